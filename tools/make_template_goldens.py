#!/usr/bin/env python3
"""Renders the chat templates in tests/data/chat-templates/templates/ with transformers' own
renderer and writes tests/data/chat-templates/template_goldens.json, the expected output of
moe::ChatTemplate (tests/engine/tst_chat_template.cpp) for every case.

    python3 tools/make_template_goldens.py [--out FILE] [--source-dump FILE]

Needs transformers (5.x: transformers.utils.chat_template_utils.render_jinja_template) and
jinja2. Without transformers it falls back to an emulation of transformers' Jinja environment
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, its tojson,
raise_exception and strftime_now) and says so in the output's "renderer" field; only
transformers-made goldens belong in the repository.

strftime_now() is pinned to FIXED_NOW so that dated templates (Mistral, gpt-oss) are
reproducible; the test passes the same date to ChatTemplateOptions::now. A case whose
rendering raises records the exception as the expected error.
"""
import argparse
import datetime as _dt
import glob
import inspect
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "chat-templates")
FIXED_NOW = _dt.datetime(2025, 6, 15, 10, 30, 0)
BOS, EOS = "<|bos|>", "<|eos|>"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"},
                "days": {"type": "integer", "description": "Forecast days"},
            },
            "required": ["city"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for"},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "Filters"},
            },
            "required": ["query"],
        },
    },
}

SYS = {"role": "system", "content": "You are a helpful assistant. Antworte kurz: ça va? 你好"}
U1 = {"role": "user", "content": "What is 2+2?"}
A1 = {"role": "assistant", "content": "2+2 is 4."}
U2 = {"role": "user", "content": "And  3+3?\nExplain briefly."}


def tool_conversation(string_args):
    args = {"city": "Paris", "unit": "celsius", "days": 2}
    call = {
        "id": "call_0001",
        "type": "function",
        "function": {"name": "get_weather", "arguments": json.dumps(args) if string_args else args},
    }
    return [
        SYS,
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0001", "name": "get_weather", "content": '{"temp": 21, "sky": "clear"}'},
        {"role": "assistant", "content": "It is 21 °C and clear in Paris."},
        {"role": "user", "content": "Thanks!"},
    ]


def cases():
    reasoning_past = [
        U1,
        {"role": "assistant", "content": "4", "reasoning_content": "Two plus two is four."},
        U2,
    ]
    reasoning_last = [
        U1,
        {"role": "assistant", "content": "4", "reasoning_content": "Two plus two is four."},
    ]
    thinking_last = [U1, {"role": "assistant", "content": "4", "thinking": "Two plus two is four."}]
    out = [
        ("user_only_gen", [U1], {"add_generation_prompt": True}),
        ("system_user_gen", [SYS, U1], {"add_generation_prompt": True}),
        ("system_user_nogen", [SYS, U1], {"add_generation_prompt": False}),
        ("multi_turn_gen", [SYS, U1, A1, U2], {"add_generation_prompt": True}),
        ("multi_turn_final_assistant", [U1, A1], {"add_generation_prompt": False}),
        ("reasoning_past_turn", reasoning_past, {"add_generation_prompt": True}),
        ("reasoning_last_turn", reasoning_last, {"add_generation_prompt": False}),
        ("thinking_field_last_turn", thinking_last, {"add_generation_prompt": False}),
        ("enable_thinking_true", [SYS, U1], {"add_generation_prompt": True, "enable_thinking": True}),
        ("enable_thinking_false", [SYS, U1], {"add_generation_prompt": True, "enable_thinking": False}),
        ("enable_thinking_false_history", [U1, A1, U2], {"add_generation_prompt": True, "enable_thinking": False}),
        ("tools_dict_args", tool_conversation(False), {"add_generation_prompt": True, "tools": [WEATHER_TOOL, SEARCH_TOOL]}),
        ("tools_string_args", tool_conversation(True), {"add_generation_prompt": True, "tools": [WEATHER_TOOL, SEARCH_TOOL]}),
        ("tools_defined_no_calls", [U1], {"add_generation_prompt": True, "tools": [WEATHER_TOOL]}),
        ("reasoning_effort_high", [SYS, U1], {"add_generation_prompt": True, "reasoning_effort": "high"}),
    ]
    return out


# Small templates exercising single Jinja features; rendered by the same renderer so the C++
# interpreter is checked against Jinja itself, byte for byte.
SNIPPETS = [
    ("print_values", "{{ 1 }}|{{ 1.0 }}|{{ 0.1 + 0.2 }}|{{ 1e-5 }}|{{ 1e20 }}|{{ true }}|{{ none }}|{{ [1, 'a', none, 2.5] }}|{{ {'a': [1, (2, 3)]} }}|{{ (1,) }}"),
    ("repr_quotes", "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'new\\nline'] }}"),
    ("undefined", "[{{ nope }}]{{ nope is defined }}{{ nope is undefined }}{% for x in nope %}X{% else %}empty{% endfor %}{{ nope | length }}{{ nope | default('d') }}"),
    ("undefined_attr_error", "{{ nope.attr }}"),
    ("undefined_call_error", "{{ nope() }}"),
    ("none_attr", "[{{ n.attr }}]{{ n.attr is defined }}"),
    ("missing_key", "[{{ d.missing }}][{{ d['missing'] }}]{{ d.missing is defined }}{{ d.get('missing', 'x') }}{{ d.get('a') }}"),
    ("dict_methods", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.keys() | list }}{{ d.values() | list }}{{ d | length }}"),
    ("dict_items_attr_vs_key", "{{ e['items'] }}|{{ (d['items'] is defined) }}"),
    ("loop_vars", "{% for x in ['a','b','c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('o','e') }};{% endfor %}"),
    ("loop_filter", "{% for x in range(10) if x is odd %}{{ x }}{{ ',' if not loop.last }}{% endfor %}"),
    ("loop_else", "{% for x in [] %}x{% else %}none{% endfor %}"),
    ("loop_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
    ("loop_scope", "{% set x = 0 %}{% for i in range(3) %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}"),
    ("namespace", "{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}"),
    ("set_block", "{% set greeting %}Hello {{ name }}!{% endset %}[{{ greeting }}]{% set up | upper %}abc{% endset %}{{ up }}"),
    ("set_tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}"),
    ("if_elif", "{% for x in [1, 2, 3] %}{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %} {% endfor %}"),
    ("macro", "{% macro greet(who, punct='!') %}Hi {{ who }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', punct='?') }} {{ greet(who='Cy') }}"),
    ("macro_caller", "{% macro box(title) %}[{{ title }}:{{ caller() }}]{% endmacro %}{% call box('t') %}inner {{ 1 + 1 }}{% endcall %}"),
    ("macro_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}{{ fact(5) }}"),
    ("filter_block", "{% filter upper %}shout {{ 'this' }}{% endfilter %}"),
    ("whitespace_control", "a  {{- ' b ' -}}  c\n  {%- if true %}  d{% endif -%}\n  e"),
    ("trim_lstrip_blocks", "<ul>\n    {% for x in [1, 2] %}\n    <li>{{ x }}</li>\n    {% endfor %}\n</ul>\n{# comment #}\nend\n"),
    ("lstrip_plus", "x\n    {%+ if true %}kept-indent{% endif %}\n  {{ 'var keeps indent' }}\n"),
    ("raw_block", "{% raw %}{{ not parsed }} {% if %}{% endraw %}"),
    ("operators", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 'ab' ~ 1 ~ none }} {{ 'x' * 3 }} {{ [1] + [2] }} {{ 1 + 2.5 }} {{ not true }} {{ 1 < 2 < 3 }} {{ 'a' in 'cat' }} {{ 3 not in [1, 2] }}"),
    ("and_or_values", "{{ 0 or 'x' }}|{{ 'a' and 'b' }}|{{ '' and 'b' }}|{{ none or [] }}"),
    ("ternary", "{{ 'yes' if 1 > 0 else 'no' }} [{{ 'yes' if false }}]"),
    ("slicing", "{{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ [1,2,3,4,5][::2] }} {{ [1,2,3][-1] }} {{ 'héllo'[1] }} {{ [1,2,3,4][-3:-1] }} {{ 'abc'[5:] }}|{{ [1,2,3][::-1] }}"),
    ("string_methods", "{{ '  x y  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '\\n\\nab\\n'.lstrip('\\n') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'hello world'.title() }}|{{ 'hELLo'.capitalize() }}|{{ 'aXbX'.replace('X', '-') }}|{{ '-'.join(['a', 'b']) }}|{{ 'hello'.find('l') }}|{{ 'hello'.count('l') }}|{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}|{{ '{} and {}'.format('x', 1) }}|{{ 'a\\nb'.splitlines() }}|{{ 'a/b/c'.rsplit('/', 1) }}"),
    ("tests", "{{ 1 is number }}{{ 1.5 is integer }}{{ 1 is integer }}{{ true is boolean }}{{ 'x' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 'x' is sequence }}{{ none is none }}{{ 4 is even }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}{{ 2 is in [1, 2] }}{{ 'a' is equalto 'a' }}{{ 1 is eq 1 }}{{ 1 is ne 2 }}{{ 1 is lt 2 }}{{ 3 is gt 2 }}{{ true is true }}{{ false is false }}{{ 1 is true }}"),
    ("filters_text", "{{ '  pad  ' | trim }}|{{ 'abc' | length }}|{{ 42 | string }}|{{ '12' | int + 1 }}|{{ '1.5' | float }}|{{ 'x' | int }}|{{ 'MiXed' | lower }}{{ 'MiXed' | upper }}|{{ 'hello wOrld' | title }}|{{ 'hello' | capitalize }}|{{ 'aaa' | replace('a', 'b', 2) }}|{{ 'word ' * 3 | wordcount }}|{{ 'ab' | center(6) }}|{{ 'The quick brown fox jumps' | truncate(12) }}|{{ '<a href=\"x\">&</a>' | e }}|{{ '%s=%d' | format('n', 3) }}"),
    ("filters_lists", "{{ [3, 1, 2] | sort }}|{{ ['b', 'A', 'c'] | sort }}|{{ [3, 1, 2] | sort(reverse=true) }}|{{ [1, 2, 1, 3] | unique | list }}|{{ [1, 2, 3] | reverse | list }}|{{ 'abc' | reverse }}|{{ [1, 2, 3] | first }}{{ [1, 2, 3] | last }}|{{ [1, 2, 3] | sum }}|{{ [1, 5, 3] | max }}{{ [4, 2, 3] | min }}|{{ [1, 2, 3, 4, 5] | batch(2) | list }}|{{ 'ab' | list }}|{{ [1, 2] | join(', ') }}|{{ -3 | abs }}|{{ 2.567 | round(2) }}|{{ 2.5 | round }}|{{ {'b': 1, 'a': 2} | dictsort }}|{{ {'b': 1, 'a': 2} | items | list }}"),
    ("filters_select", "{% set ms = [{'role': 'user', 'n': 1}, {'role': 'system', 'n': 2}, {'role': 'user', 'n': 3}] %}{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='n') | list }}|{{ ms | rejectattr('role', 'equalto', 'user') | list | length }}|{{ [1, 2, 3, 4] | select('even') | list }}|{{ [1, 2, 3, 4] | reject('odd') | list }}|{{ ms | map(attribute='role') | unique | join(',') }}|{{ [1, 0, 2] | select | list }}|{{ ['a', 'b'] | map('upper') | list }}|{{ ms | selectattr('n') | list | count }}"),
    ("tojson", "{{ {'b': 1, 'a': [1.5, 'é', none, true]} | tojson }}|{{ 'q\"\\n' | tojson }}|{{ {'b': 1, 'a': {'c': 2}} | tojson(indent=2) }}|{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}|{{ [1, {'x': 'ü'}] | tojson(separators=(',', ':')) }}|{{ '☃' | tojson(ensure_ascii=true) }}"),
    ("indent", "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(4, first=true) }}|{{ 'a\\n\\nb' | indent('> ', blank=true) }}"),
    ("default_filter", "{{ none | default('x') }}|{{ '' | default('x', true) }}|{{ undefined_var | d('y') }}|{{ 0 | default(5) }}"),
    ("raise_exception", "{% if true %}{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"),
    ("strftime_now", "{{ strftime_now('%Y-%m-%d %H:%M') }}|{{ strftime_now('%d %b %Y') }}"),
    ("list_append_refused", "{% set l = [1] %}{% set _ = l.append(2) %}{{ l }}"),
    ("unknown_filter_error", "line one\n{{ 'x' | no_such_filter }}"),
    ("syntax_error", "{% if true %}\nunclosed"),
    ("type_error", "{{ 'a' + 1 }}"),
    ("messages_loop", "{% for m in messages %}<{{ m.role }}>{{ m['content'] | trim }}{% if not loop.last %}\n{% endif %}{% endfor %}"),
    ("dict_literal_order", "{% set d = {'z': 1, 'a': 2, 'm': 3} %}{% for k in d %}{{ k }}{% endfor %}{{ d }}"),
    ("string_iteration", "{% for c in 'añb' %}[{{ c }}]{% endfor %}{{ 'añb' | length }}"),
    ("range_forms", "{{ range(3) | list }}{{ range(1, 7, 2) | list }}{{ range(5, 0, -2) | list }}"),
    ("nested_loops", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }}{% endfor %}{{ loop.index }};{% endfor %}"),
    ("is_string_tojson_args", "{% for tc in calls %}{{ tc.arguments if tc.arguments is string else tc.arguments | tojson }};{% endfor %}"),
    ("comment_and_trailing_newline", "a{# c #}b\n"),
]

SNIPPET_CONTEXT = {
    "name": "World",
    "n": None,
    "d": {"a": 1, "b": [1, 2]},
    "e": {"items": "item-key"},
    "messages": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi\n"}],
    "calls": [{"arguments": '{"a": 1}'}, {"arguments": {"b": [1, 2], "c": "ü"}}],
}


def make_renderer():
    """Returns (render(template, messages, tools, add_generation_prompt, **kwargs), description)."""
    try:
        import transformers
        from transformers.utils import chat_template_utils as ctu

        class FixedDatetime(_dt.datetime):
            @classmethod
            def now(cls, tz=None):
                return FIXED_NOW

        patched = []
        for attr in ("datetime",):
            if getattr(ctu, attr, None) is _dt.datetime:
                setattr(ctu, attr, FixedDatetime)
                patched.append("chat_template_utils.datetime")
            elif getattr(ctu, attr, None) is _dt:
                class FakeModule:
                    datetime = FixedDatetime
                    date = _dt.date
                    timedelta = _dt.timedelta
                setattr(ctu, attr, FakeModule)
                patched.append("chat_template_utils.datetime (module)")
        if hasattr(ctu, "_compile_jinja_template") and hasattr(ctu._compile_jinja_template, "cache_clear"):
            ctu._compile_jinja_template.cache_clear()

        def render(template, messages, tools=None, add_generation_prompt=False, **kwargs):
            out = ctu.render_jinja_template(
                conversations=[messages], tools=tools, chat_template=template,
                add_generation_prompt=add_generation_prompt, **kwargs)
            rendered = out[0] if isinstance(out, tuple) else out
            return rendered[0] if isinstance(rendered, list) else rendered

        desc = {
            "renderer": "transformers.utils.chat_template_utils.render_jinja_template",
            "transformers": transformers.__version__,
            "signature": str(inspect.signature(ctu.render_jinja_template)),
            "date_patch": patched,
        }
        return render, desc, ctu
    except ImportError:
        pass

    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return FIXED_NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now

    def render(template, messages, tools=None, add_generation_prompt=False, **kwargs):
        return env.from_string(template).render(
            messages=messages, tools=tools, documents=None, add_generation_prompt=add_generation_prompt, **kwargs)

    return render, {"renderer": "jinja2-emulation (NOT transformers)"}, None


def run_case(render, template, messages, opts):
    opts = dict(opts)
    tools = opts.pop("tools", None)
    agp = opts.pop("add_generation_prompt", False)
    try:
        return {"rendered": render(template, messages, tools=tools, add_generation_prompt=agp,
                                   bos_token=BOS, eos_token=EOS, **opts)}
    except Exception as e:  # a template's own raise_exception or a Jinja error
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(DATA, "template_goldens.json"))
    ap.add_argument("--source-dump", default=None, help="write the renderer's source here")
    args = ap.parse_args()

    render, desc, ctu = make_renderer()
    import jinja2
    desc["jinja2"] = jinja2.__version__
    desc["python"] = sys.version.split()[0]
    if args.source_dump and ctu is not None:
        with open(args.source_dump, "w") as f:
            f.write(inspect.getsource(ctu))
    probe = run_case(render, "{{ strftime_now('%Y-%m-%d') }}", [], {})
    desc["date_patch_ok"] = probe.get("rendered") == FIXED_NOW.strftime("%Y-%m-%d")

    out = {
        "generator": "tools/make_template_goldens.py",
        "environment": desc,
        "fixed_now": FIXED_NOW.isoformat(),
        "bos_token": BOS,
        "eos_token": EOS,
        "templates": [],
        "snippets": [],
    }
    for path in sorted(glob.glob(os.path.join(DATA, "templates", "*.jinja"))):
        with open(path, encoding="utf-8") as f:
            template = f.read()
        entry = {"file": os.path.basename(path), "cases": []}
        for name, messages, opts in cases():
            result = run_case(render, template, messages, opts)
            case = {"name": name, "messages": messages}
            case.update({k: v for k, v in opts.items()})
            case.update(result)
            entry["cases"].append(case)
        out["templates"].append(entry)
    for name, source in SNIPPETS:
        result = run_case(render, source, SNIPPET_CONTEXT["messages"],
                          {k: v for k, v in SNIPPET_CONTEXT.items() if k != "messages"})
        out["snippets"].append({"name": name, "template": source, **result})
    out["snippet_context"] = SNIPPET_CONTEXT

    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    n = sum(len(t["cases"]) for t in out["templates"])
    errs = sum(1 for t in out["templates"] for c in t["cases"] if "error" in c)
    print(f"{desc}\nwrote {args.out}: {len(out['templates'])} templates, {n} cases ({errs} errors), "
          f"{len(out['snippets'])} snippets")


if __name__ == "__main__":
    main()
