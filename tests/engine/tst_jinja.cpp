// The Jinja interpreter on its own (moe::jinja::Template): Python value printing, limits and
// error locations. Whole-template behaviour is checked against Jinja itself in
// tst_chat_template (snippets and real model templates).
#include <QtTest>

#include "core/error.h"
#include "tokenizer/jinja/template.h"

using moe::jinja::Template;
using moe::jinja::Value;

class TestJinja : public QObject {
    Q_OBJECT

    static std::string render(const std::string& src,
                              const std::vector<std::pair<std::string, Value>>& vars = {}) {
        return Template(src, "t").render(vars);
    }

  private slots:
    void pythonFloatRepr() {
        QCOMPARE(moe::jinja::format_float(1.0), std::string("1.0"));
        QCOMPARE(moe::jinja::format_float(0.1), std::string("0.1"));
        QCOMPARE(moe::jinja::format_float(1e16), std::string("1e+16"));
        QCOMPARE(moe::jinja::format_float(123456789012345.0), std::string("123456789012345.0"));
        QCOMPARE(moe::jinja::format_float(0.0001), std::string("0.0001"));
        QCOMPARE(moe::jinja::format_float(-2.5e-7), std::string("-2.5e-07"));
    }

    void jsonInputKeepsOrderAndTypes() {
        const auto j = nlohmann::ordered_json::parse(R"({"z": 1, "a": [1.0, true, null, "é"]})");
        QCOMPARE(render("{{ x }}|{{ x | tojson }}", {{"x", Value::from_json(j)}}),
                 std::string("{'z': 1, 'a': [1.0, True, None, 'é']}|{\"z\": 1, \"a\": [1.0, true, "
                             "null, \"é\"]}"));
        QCOMPARE(render("{{ '😀' | tojson(ensure_ascii=true) }}"),
                 std::string("\"\\ud83d\\ude00\""));
    }

    void limitsStopRunawayTemplates() {
        moe::jinja::RenderLimits limits;
        limits.max_output_bytes = 1000;
        Template t("{% for i in range(100) %}{{ 'x' * 50 }}{% endfor %}", "t", limits);
        QVERIFY_THROWS_EXCEPTION(moe::Error, t.render({}));
        limits = {};
        limits.max_call_depth = 10;
        Template deep("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "t", limits);
        QVERIFY_THROWS_EXCEPTION(moe::Error, deep.render({}));
    }

    void errorLocations() {
        try {
            render("line1\n{% for m in messages %}\n{{ m.content + 1 }}{% endfor %}",
                   {{"messages",
                     Value::from_json(nlohmann::ordered_json::parse(R"([{"content": "a"}])"))}});
            QFAIL("expected an error");
        } catch (const moe::Error& e) {
            QCOMPARE(QString(e.what()),
                     QString("t, line 3: can only concatenate str (not \"int\") to str"));
        }
        try {
            render("{% if x %}\n{% endfor %}");
            QFAIL("expected an error");
        } catch (const moe::Error& e) {
            QVERIFY2(QString(e.what()).startsWith("t, line 2:"), e.what());
        }
    }

    // Found by fuzz_jinja: a hex escape without hex digits threw std::invalid_argument out of
    // the lexer. Now an error of the template, with its line; so are huge integer literals.
    void malformedLiteralsAreTemplateErrors() {
        try {
            render("ok\n{{ 'a\\u12zz' }}");
            QFAIL("expected an error");
        } catch (const moe::Error& e) {
            QVERIFY2(QString(e.what()).startsWith("t, line 2: bad escape"), e.what());
        }
        QVERIFY_THROWS_EXCEPTION(moe::Error, render("{{ '\\U00110000' }}"));
        QVERIFY_THROWS_EXCEPTION(moe::Error, render("{{ 99999999999999999999999 }}"));
    }

    void undefinedSemantics() {
        QCOMPARE(render("[{{ u }}|{{ u is defined }}|{{ u | length }}|{% for x in u %}x{% endfor "
                        "%}|{{ u == u }}]"),
                 std::string("[|False|0||True]"));
        QVERIFY_THROWS_EXCEPTION(moe::Error, render("{{ u + 1 }}"));
        QVERIFY_THROWS_EXCEPTION(moe::Error, render("{{ u.attr }}"));  // as Jinja's Undefined
    }
};

QTEST_GUILESS_MAIN(TestJinja)
#include "tst_jinja.moc"
