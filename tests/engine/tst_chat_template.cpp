// moe::ChatTemplate against transformers: every rendering must match byte for byte.
//  - chat_goldens.json: apply_chat_template(tokenize=False) with four tokenizer_config.json
//  - template_goldens.json: real model templates x conversations (tools, reasoning, thinking
//    switches, ...) and one-feature snippets, rendered by transformers' render_jinja_template
//    (tools/make_template_goldens.py); where transformers raised, an error is expected.
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "tokenizer/chat_template.h"

using ojson = nlohmann::ordered_json;

namespace {

QString data_dir() {
    const QByteArray v = qgetenv("MOE_TEST_DATA");
    return (v.isEmpty() ? QString::fromUtf8(MOE_TEST_DATA_DIR) : QString::fromLocal8Bit(v)) +
           "/chat-templates";
}

std::string read_file(const QString& path) {
    std::ifstream in(path.toStdString(), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

ojson read_json(const QString& path) {
    return ojson::parse(read_file(path));
}

// The goldens' fixed "now" for strftime_now, as a std::tm.
std::tm fixed_now(const ojson& goldens) {
    std::tm tm{};
    std::istringstream in(goldens["fixed_now"].get<std::string>());
    in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
    std::mktime(&tm);  // fills tm_wday / tm_yday for %a, %j, ...
    return tm;
}

// First differing byte, for a readable failure.
QByteArray diff_message(const std::string& got, const std::string& want) {
    size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
    auto around = [&](const std::string& s) {
        size_t b = i > 40 ? i - 40 : 0;
        return QString::fromStdString(s.substr(b, 120)).toUtf8().replace("\n", "\\n");
    };
    return "first difference at byte " + QByteArray::number(qulonglong(i)) + "\n got: ..." +
           around(got) + "\nwant: ..." + around(want);
}

}  // namespace

class TestChatTemplate : public QObject {
    Q_OBJECT

    ojson goldens_;

    void check(const moe::ChatTemplate& t, const ojson& messages, const moe::ChatTemplateOptions& o,
               const ojson& expected) {
        if (expected.contains("error")) {
            try {
                const std::string got = t.apply(messages, o);
                QFAIL(qPrintable("expected an error like transformers' (" +
                                 QString::fromStdString(expected["error"].get<std::string>()) +
                                 "), got output: " + QString::fromStdString(got.substr(0, 200))));
            } catch (const moe::Error& e) {
                QVERIFY2(std::string(e.what()).find(", line ") != std::string::npos, e.what());
            }
            return;
        }
        std::string got;
        try {
            got = t.apply(messages, o);
        } catch (const moe::Error& e) {
            QFAIL(e.what());
        }
        const std::string want = expected["rendered"].get<std::string>();
        QVERIFY2(got == want, diff_message(got, want).constData());
    }

  private slots:
    void initTestCase() { goldens_ = read_json(data_dir() + "/template_goldens.json"); }

    void tokenizerConfigs_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("index");
        const ojson chat = read_json(data_dir() + "/chat_goldens.json")["tokenizers"];
        for (auto it = chat.begin(); it != chat.end(); ++it)
            for (size_t i = 0; i < it.value().size(); ++i)
                QTest::newRow(
                    qPrintable(QString::fromStdString(it.key()) + "/" + QString::number(i)))
                    << QString::fromStdString(it.key()) << int(i);
    }

    void tokenizerConfigs() {
        QFETCH(QString, name);
        QFETCH(int, index);
        const ojson c = read_json(
            data_dir() + "/chat_goldens.json")["tokenizers"][name.toStdString()][size_t(index)];
        const auto t =
            moe::ChatTemplate::from_model_folder((data_dir() + "/" + name).toStdString());
        moe::ChatTemplateOptions o;
        o.add_generation_prompt = c.value("add_generation_prompt", false);
        if (c.contains("enable_thinking")) o.enable_thinking = c["enable_thinking"].get<bool>();
        check(t, c["messages"], o, c);
    }

    void modelTemplates_data() {
        QTest::addColumn<int>("t");
        QTest::addColumn<int>("c");
        const ojson& ts = goldens_["templates"];
        for (size_t t = 0; t < ts.size(); ++t)
            for (size_t c = 0; c < ts[t]["cases"].size(); ++c)
                QTest::newRow(qPrintable(
                    QString::fromStdString(ts[t]["file"].get<std::string>() + "/" +
                                           ts[t]["cases"][c]["name"].get<std::string>())))
                    << int(t) << int(c);
    }

    void modelTemplates() {
        QFETCH(int, t);
        QFETCH(int, c);
        const ojson& entry = goldens_["templates"][size_t(t)];
        const ojson& cs = entry["cases"][size_t(c)];
        const std::string file = entry["file"].get<std::string>();
        const moe::ChatTemplate tmpl(
            read_file(data_dir() + "/templates/" + QString::fromStdString(file)),
            "chat template (" + file + ")", goldens_["bos_token"].get<std::string>(),
            goldens_["eos_token"].get<std::string>());
        moe::ChatTemplateOptions o;
        o.now = fixed_now(goldens_);
        static const std::set<std::string> known = {
            "name",     "messages", "add_generation_prompt", "enable_thinking", "tools",
            "rendered", "error"};
        for (auto it = cs.begin(); it != cs.end(); ++it) {
            if (it.key() == "add_generation_prompt")
                o.add_generation_prompt = it.value().get<bool>();
            else if (it.key() == "enable_thinking")
                o.enable_thinking = it.value().get<bool>();
            else if (it.key() == "tools")
                o.tools = it.value();
            else if (!known.count(it.key()))
                o.extra[it.key()] = it.value();
        }
        check(tmpl, cs["messages"], o, cs);
    }

    void snippets_data() {
        QTest::addColumn<int>("i");
        const ojson& s = goldens_["snippets"];
        for (size_t i = 0; i < s.size(); ++i)
            QTest::newRow(s[i]["name"].get<std::string>().c_str()) << int(i);
    }

    void snippets() {
        QFETCH(int, i);
        const ojson& s = goldens_["snippets"][size_t(i)];
        const ojson& ctx = goldens_["snippet_context"];
        moe::ChatTemplateOptions o;
        o.now = fixed_now(goldens_);
        for (auto it = ctx.begin(); it != ctx.end(); ++it)
            if (it.key() != "messages") o.extra[it.key()] = it.value();
        std::unique_ptr<moe::ChatTemplate> t;
        try {
            t = std::make_unique<moe::ChatTemplate>(s["template"].get<std::string>(), "snippet",
                                                    goldens_["bos_token"].get<std::string>(),
                                                    goldens_["eos_token"].get<std::string>());
        } catch (const moe::Error& e) {
            QVERIFY2(s.contains("error"), e.what());  // a syntax error transformers also saw
            return;
        }
        check(*t, ctx["messages"], o, s);
    }

    void errorsNameTemplateAndLine() {
        const ojson msgs = ojson::array();
        auto message_of = [&](const std::string& src) -> std::string {
            try {
                moe::ChatTemplate(src, "chat template (tokenizer_config.json)").apply(msgs);
            } catch (const moe::Error& e) {
                return e.what();
            }
            return "no error";
        };
        QCOMPARE(QString::fromStdString(message_of("a\n\n{{ x | foo }}")),
                 QString("chat template (tokenizer_config.json), line 3: no filter named 'foo'"));
        QCOMPARE(QString::fromStdString(
                     message_of("{% if true %}\n{{ raise_exception('bad roles') }}{% endif %}")),
                 QString("chat template (tokenizer_config.json), line 2: bad roles"));
        QVERIFY(message_of("{% for x in %}").find("line 1:") != std::string::npos);
        QVERIFY(message_of("\n{% if x %}").find("line 2:") != std::string::npos);
        QVERIFY(message_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").find("recursion") !=
                std::string::npos);
        QVERIFY(message_of("{{ range(1000000) | length }}").find("Range too big") !=
                std::string::npos);
        QVERIFY(
            message_of(
                "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}")
                .find("loop iterations") != std::string::npos);
        QVERIFY(message_of("{{ undefined_fn() }}").find("'undefined_fn' is undefined") !=
                std::string::npos);
    }

    void modelFolderSources() {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const std::string root = dir.path().toStdString();
        auto write = [&](const char* name, const std::string& text) {
            std::ofstream(root + "/" + name, std::ios::binary) << text;
        };
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::ChatTemplate::from_model_folder(root));
        write("tokenizer_config.json",
              R"({"bos_token": {"__type": "AddedToken", "content": "<B>"}, "eos_token": "<E>",
                  "chat_template": [{"name": "tool_use", "template": "T"},
                                    {"name": "default", "template": "{{ bos_token }}D{{ eos_token }}"}]})");
        const ojson msgs = ojson::array();
        QCOMPARE(moe::ChatTemplate::from_model_folder(root).apply(msgs), std::string("<B>D<E>"));
        write("chat_template.json", R"({"chat_template": "J{{ messages | length }}"})");
        QCOMPARE(moe::ChatTemplate::from_model_folder(root).apply(msgs), std::string("J0"));
        write("chat_template.jinja", "F{{ bos_token }}\n");
        QCOMPARE(moe::ChatTemplate::from_model_folder(root).apply(msgs), std::string("F<B>"));
        moe::ChatTemplateOptions o;
        o.bos_token = "<override>";
        QCOMPARE(moe::ChatTemplate::from_model_folder(root).apply(msgs, o),
                 std::string("F<override>"));
        // llama2's config has no template: the error says where it looked.
        try {
            moe::ChatTemplate::from_model_folder((data_dir() + "/llama2").toStdString());
            QFAIL("expected an error");
        } catch (const moe::Error& e) {
            QVERIFY2(std::string(e.what()).find("no chat template") != std::string::npos, e.what());
        }
    }

    void plainJsonMessagesWork() {
        const moe::ChatTemplate t(
            "{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}");
        const nlohmann::json msgs = {{{"role", "user"}, {"content", "hi"}}};
        QCOMPARE(t.apply(msgs), std::string("user:hi;"));
    }
};

QTEST_GUILESS_MAIN(TestChatTemplate)
#include "tst_chat_template.moc"
