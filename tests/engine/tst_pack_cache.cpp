// The on-disk cache of repacked experts (cpu/moe/pack_cache.h): the first load packs and writes
// it, the second maps it without packing and gives bit-identical logits, a damaged file is
// rejected and rewritten, and the key follows the format and the model files.
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <cstring>
#include <filesystem>

#include "cpu/moe/pack_cache.h"
#include "golden.h"
#include "model/model.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;

using moetest::data_dir;

// Copies the fixture's files (not its subfolders) so that cache files land in a scratch folder.
std::string copy_fixture(const QString& fixture, const QTemporaryDir& tmp) {
    const QDir src(data_dir() + "/" + fixture);
    const QString dst = tmp.path() + "/model";
    QDir().mkpath(dst);
    for (const QString& f : src.entryList(QDir::Files)) {
        if (!QFile::copy(src.filePath(f), dst + "/" + f)) qFatal("cannot copy %s", qPrintable(f));
    }
    return dst.toStdString();
}

std::vector<float> logits_of(const std::string& path, const std::string& format) {
    moe::LoadOptions o;
    o.expert_format = format;
    return moetest::prompt_logits(path, {1, 5, 9, 13, 2, 7}, o);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<std::string> cache_files(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
}

std::string only_cache_file(const std::string& model) {
    const auto files = cache_files(model + "/.moestudio-cache");
    if (files.size() != 1) qFatal("expected one cache file, found %zu", files.size());
    return files.front();
}

}  // namespace

class PackCache : public QObject {
    Q_OBJECT

  private slots:
    void initTestCase() {
        qunsetenv("MOE_PACK_CACHE");
        moe::set_pack_cache_min_bytes(0);  // the fixtures are far below the default threshold
    }
    void init() {
        moe::set_pack_cache_dir("");
        moe::reset_pack_cache_stats();
    }

    void secondLoadMapsTheCache_data() {
        QTest::addColumn<QString>("fixture");
        QTest::addColumn<QString>("format");
        for (const char* fx : {"hf-tiny/qwen3_moe-s1", "hf-extra/qwen3_moe-s2"}) {
            for (const char* f : {"int8", "int4"}) {
                QTest::newRow(qPrintable(QString(fx) + " " + f)) << QString(fx) << QString(f);
            }
        }
    }
    void secondLoadMapsTheCache() {
        QFETCH(QString, fixture);
        QFETCH(QString, format);
        QTemporaryDir tmp;
        const std::string model = copy_fixture(fixture, tmp);
        const auto first = logits_of(model, format.toStdString());
        auto s = moe::pack_cache_stats();
        QVERIFY(s.packed_matrices > 0);
        QCOMPARE(s.writes, 1);
        QCOMPARE(s.hits, 0);
        const std::string file = only_cache_file(model);
        QVERIFY(QString::fromStdString(file).endsWith(".bin"));

        moe::reset_pack_cache_stats();
        const auto second = logits_of(model, format.toStdString());
        s = moe::pack_cache_stats();
        QCOMPARE(s.hits, 1);
        QCOMPARE(s.packed_matrices, 0);  // nothing repacked: the banks point into the file
        QCOMPARE(s.writes, 0);
        QVERIFY(same_bits(first, second));

        // With the cache off, packing gives the same bits and writes nothing.
        qputenv("MOE_PACK_CACHE", "0");
        moe::reset_pack_cache_stats();
        const auto uncached = logits_of(model, format.toStdString());
        qunsetenv("MOE_PACK_CACHE");
        s = moe::pack_cache_stats();
        QVERIFY(s.packed_matrices > 0);
        QCOMPARE(s.hits + s.misses + s.writes, 0);
        QVERIFY(same_bits(first, uncached));
    }

    void damagedCacheIsRebuilt_data() {
        QTest::addColumn<QString>("damage");
        QTest::newRow("flipped payload") << "flip";
        QTest::newRow("flipped header") << "header";
        QTest::newRow("truncated") << "truncate";
        QTest::newRow("empty") << "empty";
    }
    void damagedCacheIsRebuilt() {
        QFETCH(QString, damage);
        QTemporaryDir tmp;
        const std::string model = copy_fixture("hf-tiny/qwen3_moe-s1", tmp);
        const auto first = logits_of(model, "int8");
        const std::string file = only_cache_file(model);
        const auto size = fs::file_size(file);
        {
            QFile f(QString::fromStdString(file));
            QVERIFY(f.open(QIODevice::ReadWrite));
            if (damage == "flip" || damage == "header") {
                const qint64 at = damage == "flip" ? qint64(size * 3 / 4) : 40;
                f.seek(at);
                QByteArray b = f.read(4);
                for (auto& c : b) c = char(~c);
                f.seek(at);
                f.write(b);
            } else {
                QVERIFY(f.resize(damage == "empty" ? 0 : qint64(size - 100)));
            }
        }
        moe::reset_pack_cache_stats();
        const auto again = logits_of(model, "int8");
        auto s = moe::pack_cache_stats();
        QCOMPARE(s.rejected, 1);
        QCOMPARE(s.hits, 0);
        QVERIFY(s.packed_matrices > 0);  // not trusted: repacked ...
        QCOMPARE(s.writes, 1);           // ... and rewritten
        QVERIFY(same_bits(first, again));
        QVERIFY(fs::file_size(file) == size);

        moe::reset_pack_cache_stats();
        const auto third = logits_of(model, "int8");
        s = moe::pack_cache_stats();
        QCOMPARE(s.hits, 1);
        QCOMPARE(s.packed_matrices, 0);
        QVERIFY(same_bits(first, third));
    }

    void rejectionIsLogged() {
        QTemporaryDir tmp;
        const std::string model = copy_fixture("hf-tiny/qwen3_moe-s1", tmp);
        logits_of(model, "int4");
        const std::string file = only_cache_file(model);
        fs::resize_file(file, fs::file_size(file) / 2);
        moe::reset_pack_cache_stats();
        // Read directly (a load would log the rewrite after the rejection).
        const std::string key = fs::path(file).stem().string().substr(std::strlen("experts-"));
        QVERIFY(moe::read_pack_cache(model, key).empty());
        const auto s = moe::pack_cache_stats();
        QCOMPARE(s.rejected, 1);
        const QString line = QString::fromStdString(s.last_event);
        QVERIFY2(line.contains("ignoring invalid cache file") && line.contains("truncated") &&
                     line.contains(QString::fromStdString(file)),
                 qPrintable(line));
    }

    void keyFollowsFormatAndFiles() {
        QTemporaryDir tmp;
        const std::string model = copy_fixture("hf-tiny/qwen3_moe-s1", tmp);
        const auto files = moe::model_weight_files(model);
        // config.json and every *.safetensors (the fixture's goldens count too: harmless).
        QVERIFY(std::find(files.begin(), files.end(), model + "/config.json") != files.end());
        QVERIFY(std::find(files.begin(), files.end(), model + "/model.safetensors") != files.end());
        moe::PackOptions int8, int4, int4g64;
        int8.format = moe::PackedFormat::INT8;
        int4.format = int4g64.format = moe::PackedFormat::INT4;
        int4g64.group = 64;
        const std::string k8 = moe::pack_cache_key(files, int8);
        QCOMPARE(moe::pack_cache_key(files, int8), k8);  // deterministic
        QVERIFY(moe::pack_cache_key(files, int4) != k8);
        QVERIFY(moe::pack_cache_key(files, int4g64) != moe::pack_cache_key(files, int4));

        // Each format gets its own file; both stay valid.
        logits_of(model, "int8");
        logits_of(model, "int4");
        QCOMPARE(cache_files(model + "/.moestudio-cache").size(), size_t(2));

        // A rewritten weight file (here: only its mtime moves) changes the key: repacked.
        const std::string st = model + "/model.safetensors";
        fs::last_write_time(st, fs::last_write_time(st) + std::chrono::seconds(5));
        QVERIFY(moe::pack_cache_key(moe::model_weight_files(model), int8) != k8);
        moe::reset_pack_cache_stats();
        logits_of(model, "int8");
        const auto s = moe::pack_cache_stats();
        QCOMPARE(s.hits, 0);
        QVERIFY(s.packed_matrices > 0);
        QCOMPARE(s.writes, 1);
    }

    void cacheDirOverride() {
        QTemporaryDir tmp, cache;
        const std::string model = copy_fixture("hf-extra/qwen3_moe-s2", tmp);
        moe::set_pack_cache_dir(cache.path().toStdString());
        const auto first = logits_of(model, "int4");
        QCOMPARE(cache_files(cache.path().toStdString()).size(), size_t(1));
        QVERIFY(!fs::exists(model + "/.moestudio-cache"));
        moe::reset_pack_cache_stats();
        QVERIFY(same_bits(first, logits_of(model, "int4")));
        QCOMPARE(moe::pack_cache_stats().hits, 1);
        moe::set_pack_cache_dir("");
    }

    void smallModelsAreNotWrittenByDefault() {
        QTemporaryDir tmp;
        const std::string model = copy_fixture("hf-tiny/qwen3_moe-s1", tmp);
        moe::set_pack_cache_min_bytes(32ull << 20);
        logits_of(model, "int8");
        moe::set_pack_cache_min_bytes(0);
        QCOMPARE(moe::pack_cache_stats().writes, 0);
        QVERIFY(!fs::exists(model + "/.moestudio-cache"));
    }
};

QTEST_GUILESS_MAIN(PackCache)
#include "tst_pack_cache.moc"
