"""strings.render_template (policy/_gotemplate.py: Go's text/template in Python) against a real
`opa eval`.

Each case is a template and its vars (Rego text), a rule of one module evaluated by sbomgate's
engine and by OPA in one run: the same string, or undefined in both (a parse or execution error
is the builtin's error, undefined in OPA's default mode). Numbers come as Rego values and from
the input (JSON), so their text is the one OPA keeps where regorus keeps it too.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sbomgate.policy._gotemplate import TemplateOutOfReach, render_template
from sbomgate.policy._regorus import RegoEngine, analyse_module, check_calls

INPUT = {
    "f": 7.5, "small": 0.25, "neg": -3, "big": 123456789012, "zero": 0, "tenth": 0.1,
    "list": ["x"], "null": None, "object": {"k": [1.5, "v"]},
}  # fmt: skip

DATA = (
    '{"name": "web", "n": 5, "f": 2.5, "s": "héllo", "t": true, "no": false, "nil": null, '
    '"items": [1, "two", null, false], "m": {"b": 2, "a": "x", "c": {"k": [1, 2]}}, '
    '"empty": [], "eo": {}, "es": ""}'
)

# (template, vars as Rego text)
CASES: list[tuple[str, str]] = [
    # text, fields, missing keys, nil
    ("plain text", "{}"),
    ("", "{}"),
    ("{{.name}}", DATA),
    ("{{.m.c.k}}", DATA),
    ("{{.missing}}", DATA),
    ("{{.m.missing.x.y}}", DATA),
    ("{{.nil}}", DATA),
    ("{{.nil.x}}", DATA),
    ("{{.name.x}}", DATA),
    ("{{.items.x}}", DATA),
    ("{{.n.x}}", DATA),
    ("{{.t.x}}", DATA),
    ("{{.}}", DATA),
    ("{{$}}|{{$.name}}", DATA),
    ("{{.n}} {{.f}} {{.t}} {{.no}} {{.es}}|", DATA),
    ("<no value> {{.missing}}", "{}"),
    ("{{.ключ}} {{.a_1}}", '{"ключ": "v", "a_1": 1}'),
    ("{{.a-b}}", '{"a-b": 1}'),
    ('{{index . "a-b"}}', '{"a-b": 1}'),
    ("{{.a 1}}", '{"a": 1}'),
    ("{{.missing.x 1}}", "{}"),
    ("{{1 | .a}}", '{"a": 2}'),
    # numbers as Rego and JSON give them
    (
        "{{.a}} {{.b}} {{.c}} {{.d}} {{.e}}",
        '{"a": 0, "b": -12, "c": 3.5, "d": -0.25, "e": 123456789012}',
    ),
    (
        "{{.a}} {{.b}} {{.c}} {{.d}}",
        '{"a": 10 / 4, "b": 10 / 5, "c": 1.5 * 2, "d": 9007199254740993}',
    ),
    ("{{.f}} {{.small}} {{.neg}} {{.big}} {{.zero}} {{.tenth}}", "input"),
    ("{{.n}}", '{"n": count([1, 2, 3])}'),
    (
        "{{.a}} {{.b}} {{.c}} {{.d}} {{.e}}",
        '{"a": sum([1.5, 2.5]), "b": 7 / 2, "c": round(2.5), "d": 3 / 8 * 100, "e": max([1, 9.5])}',
    ),
    # range
    ("{{range .items}}[{{.}}]{{end}}", DATA),
    ("{{range $i, $v := .items}}{{$i}}:{{$v}};{{end}}", DATA),
    ("{{range $v := .items}}{{$v}},{{end}}", DATA),
    ("{{range $k, $v := .m}}{{$k}}={{$v}},{{end}}", DATA),
    ("{{range .m}}{{.}} {{end}}", DATA),
    ("{{range .empty}}x{{else}}empty{{end}}", DATA),
    ("{{range .eo}}x{{else}}empty map{{end}}", DATA),
    ("{{range .missing}}x{{else}}none{{end}}", DATA),
    ("{{range .nil}}x{{else}}nil{{end}}", DATA),
    ("{{range .name}}x{{end}}", DATA),
    ("{{range .n}}x{{end}}", DATA),
    ("{{range .t}}x{{end}}", DATA),
    ("{{range 3}}{{.}}{{end}}", "{}"),
    ("{{range $x := 3}}{{$x}}{{end}}", "{}"),
    ("{{range $i, $x := 3}}{{end}}", "{}"),
    ("{{range 0}}x{{else}}zero{{end}}", "{}"),
    ("{{range -2}}x{{else}}negative{{end}}", "{}"),
    ('{{range .l}}{{if eq . "b"}}{{break}}{{end}}{{.}}{{end}}', '{"l": ["a", "b", "c"]}'),
    ('{{range .l}}{{if eq . "b"}}{{continue}}{{end}}{{.}}{{end}}', '{"l": ["a", "b", "c"]}'),
    ("{{break}}", "{}"),
    ("{{range .l}}{{end}}{{continue}}", '{"l": []}'),
    ("{{range .outer}}{{range $.e}}{{else}}{{break}}{{end}}X{{end}}", '{"outer": [1, 2], "e": []}'),
    (
        "{{range .outer}}{{range $.e}}{{else}}{{continue}}{{end}}X{{end}}",
        '{"outer": [1, 2], "e": []}',
    ),
    (
        "{{range .outer}}{{range $.in}}{{.}}{{$.sep}}{{end}}|{{end}}",
        '{"outer": [1, 2], "in": ["a", "b"], "sep": "-"}',
    ),
    ("{{range .outer}}{{range .in}}{{.}}{{end}}{{end}}", '{"outer": [1, 2], "in": ["a", "b"]}'),
    ("{{$x := 0}}{{range $x = .l}}{{end}}{{$x}}", '{"l": [1, 2, 3]}'),
    ("{{$i := 0}}{{$v := 0}}{{range $i, $v = .l}}{{end}}{{$i}}/{{$v}}", '{"l": ["a", "b"]}'),
    ("{{range .l}}{{.x}}{{end}}", '{"l": [null]}'),
    ("{{range .l}}{{.x}}|{{end}}", '{"l": [{"x": 1}, {}]}'),
    ("{{range .l}}{{$y := .}}{{end}}{{$y}}", '{"l": [1]}'),
    ("{{range $i, $v := .l}}{{else}}{{$i}}{{end}}", '{"l": []}'),
    ("{{range $a, $b, $c := .l}}{{end}}", '{"l": []}'),
    ("{{range $i, $v}}{{end}}", "{}"),
    # if, else if, with, truth
    ("{{if .v}}T{{else}}F{{end}}", '{"v": ""}'),
    ("{{if .v}}T{{else}}F{{end}}", '{"v": "x"}'),
    ("{{if .v}}T{{else}}F{{end}}", '{"v": 0}'),
    ("{{if .v}}T{{else}}F{{end}}", '{"v": []}'),
    ("{{if .v}}T{{else}}F{{end}}", '{"v": [0]}'),
    ("{{if .v}}T{{else}}F{{end}}", '{"v": {}}'),
    ("{{if .v}}T{{else}}F{{end}}", '{"v": {"a": 1}}'),
    ("{{if .v}}T{{else}}F{{end}}", '{"v": null}'),
    ("{{if .v}}T{{else}}F{{end}}", '{"v": false}'),
    ("{{if .v}}T{{else}}F{{end}}", '{"v": true}'),
    ("{{if .v}}T{{else}}F{{end}}", "{}"),
    (
        "{{if 0}}T{{else}}F{{end}}{{if 0.0}}T{{else}}F{{end}}{{if 1}}T{{end}}{{if 'a'}}T{{end}}",
        "{}",
    ),
    ('{{if ""}}T{{else}}F{{end}}{{if "x"}}T{{end}}{{if nil}}T{{end}}', "{}"),
    ("{{if .a}}A{{else if .b}}B{{else if .c}}C{{else}}D{{end}}", '{"b": "", "c": 1}'),
    ("{{with .a}}{{.b}}{{end}}", '{"a": {"b": "in"}}'),
    ("{{with .a}}{{.b}}{{else}}none{{end}}", '{"a": {}}'),
    ("{{with .a}}A{{else with .b}}{{.}}{{else}}none{{end}}", '{"b": "bee"}'),
    ("{{with $x := .a}}{{$x}}{{else}}[{{$x}}]{{end}}", '{"a": ""}'),
    ("{{if}}{{end}}", "{}"),
    ("{{if .a}}", "{}"),
    ("{{if .a}}{{else}}{{else}}{{end}}", "{}"),
    ("{{if .a}}{{else with .b}}{{end}}", "{}"),
    ("{{range .a}}{{else if .b}}{{end}}", "{}"),
    ("{{end}}", "{}"),
    ("{{else}}", "{}"),
    # variables
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "{}"),
    ("{{if true}}{{$y := 1}}{{end}}{{$y}}", "{}"),
    ("{{$x = 1}}", "{}"),
    ("{{$x := 1}}{{$x := 2}}{{$x}}", "{}"),
    ("{{$x := .a}}{{$x.b}}", '{"a": {"b": "B"}}'),
    ("{{$x := .a}}{{$x.b}}", '{"a": null}'),
    ("{{(.a).b}}", '{"a": null}'),
    ("{{(.a).b}}", '{"a": {"b": 1}}'),
    ("{{$x.b}}", "{}"),
    ("{{$x := 1}}{{$x 2}}", "{}"),
    ("{{with $x, $y := .}}{{end}}", "{}"),
    ("{{($x := 5)}}{{$x}}", "{}"),
    ("{{$é := 1}}{{$é}}", "{}"),
    # and, or, not
    ('{{or .a .b}}|{{and .a .b}}|{{and "x" .b}}|{{or .a 0}}', '{"a": "", "b": "bee"}'),
    ("{{and 1 0}} {{or 0 2}} {{and 1 2}} {{or 0 false}}", "{}"),
    ("{{and .nil 1}}|{{or .nil .missing}}", '{"nil": null}'),
    ("{{not .a}} {{not .b}} {{not 0}} {{not .missing}}", '{"a": "", "b": [1]}'),
    ("{{and}}", "{}"),
    ("{{not}}", "{}"),
    ("{{not 1 2}}", "{}"),
    ("{{.a | and .b}}|{{.a | or .b}}", '{"a": "A", "b": ""}'),
    ("{{1 | and}}", "{}"),
    ("{{or 1 (len 5)}}", "{}"),
    ("{{and 0 (len 5)}}", "{}"),
    # comparisons
    ('{{eq .a "x"}} {{eq .a "y"}} {{ne .a "y"}}', '{"a": "x"}'),
    ("{{eq .n 1}}", '{"n": 1}'),
    ('{{eq .n "1"}} {{lt .n "5"}}', '{"n": 10}'),
    ("{{lt .n 5}}", '{"n": 3}'),
    ('{{lt 1 2}} {{le 2 2}} {{gt 1.5 1.0}} {{ge "b" "a"}} {{ne 1 2}} {{lt "a" "ab"}}', "{}"),
    ("{{eq 1 2 3 1}} {{eq 1 2 3}}", "{}"),
    ('{{eq 1 "a"}}', "{}"),
    ('{{eq 1 1 "a"}}', "{}"),
    ("{{lt 1 1.5}}", "{}"),
    ("{{eq true true}} {{eq true false}}", "{}"),
    ("{{lt true false}}", "{}"),
    ("{{eq .missing .other}} {{eq .missing 1}} {{eq .l nil}} {{eq nil nil}}", '{"l": []}'),
    ("{{eq .m .m}}", '{"m": {}}'),
    ("{{eq .m .l}}", '{"m": {}, "l": []}'),
    ("{{eq .l 1}}", '{"l": []}'),
    ("{{lt .missing 1}}", "{}"),
    ("{{eq}}", "{}"),
    ("{{eq 1}}", "{}"),
    ("{{ne 1 2 3}}", "{}"),
    ('{{eq (index "a" 0) 97}} {{lt (index "a" 0) 98}} {{gt 98 (index "a" 0)}}', "{}"),
    ("{{eq 1.5 1.5}} {{lt -1 0}} {{ge 2 3}} {{le 3 2}}", "{}"),
    ('{{eq "é" "é"}} {{lt "z" "é"}}', "{}"),
    # len, index, slice
    ("{{len .items}} {{len .m}} {{len .s}} {{len .n}} {{len .empty}}", DATA),
    ("{{len .t}}", DATA),
    ("{{len .missing}}", DATA),
    ("{{len .nil}}", DATA),
    ("{{len nil}}", "{}"),
    ("{{len 3}}", "{}"),
    ('{{len "héllo"}}', "{}"),
    ('{{index .items 1}} {{index .items 2}} {{index .m "a"}} {{index .m "zz"}}', DATA),
    ("{{index .items 4}}", DATA),
    ("{{index .items 5}}", DATA),
    ("{{index .items -1}}", DATA),
    ("{{index .s 0}} {{index .s 1}}", DATA),
    ('{{index .m "c" "k" 1}}', DATA),
    ("{{index .items .n}}", '{"items": [1, 2], "n": 1}'),
    ("{{index .m 1}}", DATA),
    ("{{index .items}}", DATA),
    ("{{index .items 1.0}}", DATA),
    ("{{index .items 2 0}}", DATA),
    ("{{index .nil 0}}", DATA),
    ("{{index .missing 0}}", DATA),
    ("{{index .n 0}}", DATA),
    ("{{index .t 0}}", DATA),
    ('{{index . "nil"}}|{{index . "missing"}}', DATA),
    ("{{index .l 0 0}}", '{"l": [[7, 8]]}'),
    ("{{slice .s 1 3}}|{{slice .s 3}}|{{slice .s}}", '{"s": "hello"}'),
    ("{{slice .items 1}}|{{slice .items 1 2}}|{{slice .items 0 1 2}}|{{slice .items 4}}", DATA),
    ("{{slice .s 0 1 2}}", '{"s": "hello"}'),
    ("{{slice .items 2 1}}", DATA),
    ("{{slice .s 6}}", '{"s": "hello"}'),
    ("{{slice .s -1}}", '{"s": "hello"}'),
    ("{{slice .n 1}}", '{"n": 12345}'),
    ("{{slice .m 1}}", DATA),
    ("{{slice .items 0 1 2 3}}", DATA),
    ("{{slice .items 1 3 2}}", DATA),
    ("{{slice nil}}", "{}"),
    # printf: Go constants
    ('{{printf "%d|%5d|%-5d|%05d|%+d|% d|%x|%X|%o|%O|%b" 42 42 42 42 42 42 255 255 8 8 5}}', "{}"),
    ('{{printf "%#x|%#X|%#o|%#b|%x|%.3d|%8.3d|%-08d|" 255 255 8 5 -255 7 7 7}}', "{}"),
    ('{{printf "%c|%q|%U|%#U|%c|%q|%U" 65 65 128512 65 233 39 -1}}', "{}"),
    (
        '{{printf "%.2f|%8.3f|%-8.2f|%e|%E|%g|%G|%f|%F" 3.14159 3.14159 3.14159 1234.5678 0.000012 0.000012 1e21 1.0 2.5}}',
        "{}",
    ),
    ('{{printf "%v|%v|%v|%v|%v|%v|%v" 1e6 100000.0 0.000012 1.0 1e21 123456789.0 -0.0}}', "{}"),
    (
        '{{printf "%.3g|%#.3g|%#g|%#v|%.0f|%.0f|%.0f|%.1f|%5.1f%%" 1234.5678 1.0 2.5 1.0 0.5 1.5 2.5 0.05 99.95}}',
        "{}",
    ),
    (
        '{{printf "%08.3f|%+.2e|%08.3e|%+v|% .3f|%-9.2e|" -3.14159 12345.678 1234.5 5 2.0 -1.5}}',
        "{}",
    ),
    ('{{printf "%.10f|%.20e|%.17g|%g|%g|%.3e|%.0e" 0.1 0.1 0.1 1e-5 1e-4 999999.0 5.5}}', "{}"),
    ('{{printf "%#.0f|%#e|%#g|%#.4g|%#G" 3.0 1.0 100000.0 0.0001 1e-7}}', "{}"),
    ('{{printf "%d %d %x" 9223372036854775807 -9223372036854775808 -1}}', "{}"),
    ("{{9223372036854775808}}", "{}"),
    ('{{printf "%d %5d %-6.2f|" -7 -7 -1.5}}', "{}"),
    ('{{printf "%v %d %T" (index "é" 0) (index "é" 1) (index "a" 0)}}', "{}"),
    ('{{printf "%#v|%#v|%#v|%#v" 255 "s" (index "a" 0) true}}', "{}"),
    # printf: vars' values
    ('{{printf "%d" .n}}|{{printf "%.2f" .f}}|{{printf "%5.1f" .n}}|{{printf "%-7d|" .n}}', DATA),
    ('{{printf "%v|%s|%q|%x|%X|%10v|%-4s|" .n .n .n .n .f .n .n}}', DATA),
    ('{{printf "%T %T %T %T %T %T %T %T" 1 1.5 "s" true .m .items nil .n}}', DATA),
    ('{{printf "%v" .}}', DATA),
    ('{{printf "%s|%d|%q|%x|%5v" .items .items .items .m .items}}', DATA),
    ('{{printf "%#v" .}}', DATA),
    ('{{printf "%#v|%#v|%#v" .items .n .s}}', DATA),
    ('{{printf "%t %t %t" true .t 1}}', DATA),
    ('{{printf "%s %d %v" .t .t .nil}}', DATA),
    ('{{printf "%.2f" .f}}', "input"),
    (
        '{{printf "%x|% x|%#x|%X|% #x|%.1x|%8x|%-8x|" "hi" "hi" "hi" "hi" "hi" "hi" "hi" "hi"}}',
        "{}",
    ),
    ('{{printf "%-10s|%10s|%.2s|%5.1s|%05s|%q" "ab" "héé" "héllo" "xyz" "ab" "é"}}', "{}"),
    (
        '{{printf "%q|%+q|%#q|%#q|%#+q" .a .a .b .c .a}}',
        '{"a": "a\\tb\\u00e9\\u0085\\u200b\\u00a0\\u00ad😀", "b": "a`b", "c": "plain"}',
    ),
    ('{{printf "%v" .a}}', '{"a": "tab\\there\\nnewline"}'),
    # printf: bad verbs, missing and extra arguments, indexes, stars
    ('{{printf "%d %d" 1}}', "{}"),
    ('{{printf "%d" 1 2 "x" nil}}', "{}"),
    ('{{printf "%z|%!|%s|%d" 1 2 3 "x"}}', "{}"),
    ('{{printf "%"}}', "{}"),
    ('{{printf "100%%"}}', "{}"),
    ('{{printf "%[2]d %[1]d|%[3]d|%[0]d|%[x]d" 1 2}}', "{}"),
    ('{{printf "%[2]*[1]d|%d" 12 5}}', "{}"),
    ('{{printf "%*d|%-*d|%.*f|%*d" 5 1 5 2 2 3.14159 -4 3}}', "{}"),
    ('{{printf "%*d|%.*d" "x" 1 1.5 2}}', "{}"),
    ('{{printf "%v %d %s" nil nil nil}}', "{}"),
    ('{{printf "%v|%5v|" .missing .missing}}', "{}"),
    ('{{printf "%s" 1.5}}|{{printf "%d" 1.5}}|{{printf "%t" "x"}}', "{}"),
    ('{{printf "%p" 1}}', "{}"),
    ('{{printf "%é" 1}}', "{}"),
    ('{{printf "%.2d|%.0d|%5.0d|" 5 0 0}}', "{}"),
    ('{{printf "%3c|%-4q|%08q" 65 66 67}}', "{}"),
    ("{{printf .missing}}", "{}"),
    ("{{printf 5}}", "{}"),
    ("{{printf .n}}", DATA),
    ("{{printf .fmt 3}}", '{"fmt": "%03d"}'),
    ('{{printf "%s"}}|{{printf}}', "{}"),
    ('{{"x" | printf "%s-%s" "y"}}', "{}"),
    ('{{"%d" | printf}}', "{}"),
    ('{{len .items | printf "%03d"}}', DATA),
    # print, println
    ('{{print 1 2 "a" "b" 3 .n .n true}}', DATA),
    ("{{print .missing}}|{{print nil}}|{{print}}|{{print .items .m}}", DATA),
    ('{{println 1 "a" nil .n}}', DATA),
    ("{{print 1.5 2.0 1e6}}", "{}"),
    # html, js, urlquery
    ("{{html .s}}", '{"s": "<a href=\\"x\\">&\'</a>"}'),
    ('{{html "a\\x00b"}}', "{}"),
    ("{{js .s}}", '{"s": "\'\\"\\\\<>&= \\n\\t é\\u2028\\u0085\\u00a0\\u200b😀"}'),
    ('{{js "\\x00\\x01\\x1f\\x7f\\x0b"}}', "{}"),
    ("{{urlquery .s}}", '{"s": "a b&c=d/é~_.-+?#%"}'),
    ("{{html .missing}}|{{js .missing}}|{{urlquery .missing}}", "{}"),
    ("{{html 1 2}}|{{html .n}}|{{js .n 1}}|{{urlquery .n}}|{{html .items}}", DATA),
    ('{{html "a" "b"}}|{{html "a" 1 "b"}}|{{html .missing 1}}', "{}"),
    ("{{.s | html}}|{{.s | js | urlquery}}", '{"s": "<\'>"}'),
    ("{{html}}|{{js}}|{{urlquery}}", "{}"),
    # call
    ("{{call .f}}", '{"f": 1}'),
    ("{{call}}", "{}"),
    ("{{if false}}{{call .f}}{{end}}ok", "{}"),
    # trim markers and comments
    ("a  {{- .x -}}  b", '{"x": "X"}'),
    ("a \n\t {{- .x}} b", '{"x": "X"}'),
    ("a {{.x -}} \n\t b", '{"x": "X"}'),
    ("{{-3}}|{{ 3 -}} x|{{- 4}}", "{}"),
    ("x  {{- /* comment */ -}}  y", "{}"),
    ("a {{/* c */}} b", "{}"),
    ("{{/* unclosed }}", "{}"),
    ("{{/* c */ }}", "{}"),
    ("{{/*c*/}}|{{- /*c*/}}|{{/*c*/ -}} |", "{}"),
    ("{{-/* c */}}", "{}"),
    ("{{.x\t-}}\t\n y|{{ .x  -}}   z", '{"x": "X"}'),
    ("{{.x -}}", '{"x": "X"}'),
    ("{{.x-}}", '{"x": "X"}'),
    ("a {{- \n .x \n -}} b", '{"x": "X"}'),
    ("{{- -}}", "{}"),
    ("{{-}}", "{}"),
    # define, template, block
    ('{{define "T"}}Hello {{.}}{{end}}{{template "T" .name}}', DATA),
    ('{{template "missing"}}', "{}"),
    ('{{define "T"}}[{{.}}]{{end}}{{template "T"}}', "{}"),
    ('{{block "B" .}}default {{.name}}{{end}}', DATA),
    ('{{define "B"}}override{{end}}{{block "B" .}}default{{end}}', "{}"),
    ('{{define "T"}}a{{end}}{{define "T"}}b{{end}}', "{}"),
    ('{{define "T"}}a{{end}}{{define "T"}} {{end}}{{template "T"}}', "{}"),
    ('{{define "template"}}body{{end}}', "{}"),
    ('{{define "template"}}body{{end}} \n ', "{}"),
    ('{{define "template"}}body{{end}}x', "{}"),
    (
        '{{define "R"}}{{if .}}{{index . 0}}{{template "R" (slice . 1)}}{{end}}{{end}}{{template "R" .l}}',
        '{"l": [1, 2, 3]}',
    ),
    ('{{define "R"}}{{template "R"}}{{end}}{{template "R"}}', "{}"),
    ('{{$x := 1}}{{define "T"}}{{$x}}{{end}}', "{}"),
    ('{{define "T"}}{{$}}{{end}}{{$x := 1}}{{template "T" 2}}{{$x}}', "{}"),
    (
        '{{define "T"}}{{range .}}{{if eq . "2"}}{{break}}{{end}}{{.}}{{end}}{{end}}{{template "T" .l}}',
        '{"l": [1, 2, 3]}',
    ),
    ('{{define "T"}}{{break}}{{end}}', "{}"),
    ('{{range .l}}{{block "B" .}}{{break}}{{end}}{{end}}', '{"l": [1]}'),
    ('{{if true}}{{define "T"}}{{end}}{{end}}', "{}"),
    ('{{define "T"}}{{else}}{{end}}', "{}"),
    ("{{define `T`}}raw name{{end}}{{template `T`}}", "{}"),
    ("{{define T}}{{end}}", "{}"),
    ('{{template "T" $x := 1}}', "{}"),
    ('{{define "T"}}{{.}}{{end}}{{template "T" "a" | printf "%s!"}}', "{}"),
    # pipelines, parentheses, commands
    (
        '{{.a | len}}|{{(len .a)}}|{{printf "%d" (len .a)}}|{{(index .a 1).b}}',
        '{"a": [1, {"b": "B"}]}',
    ),
    ("{{(1)}}|{{(.a)}}", '{"a": "A"}'),
    ("{{(1) 2}}", "{}"),
    ("{{1 | (len .a)}}", '{"a": []}'),
    ("{{.a |}}", '{"a": "A"}'),
    ("{{.a | 1}}", '{"a": "A"}'),
    ("{{.a | .b}}", '{"a": "A", "b": "B"}'),
    ("{{.a | $}}", '{"a": "A"}'),
    ("{{1 2}}", "{}"),
    ("{{nil}}", "{}"),
    ("{{nil | print}}", "{}"),
    ("{{print nil | print}}", "{}"),
    ("{{true.x}}", "{}"),
    ('{{"a".x}}', "{}"),
    ("{{(.a).x.y}}", '{"a": {"x": {"y": "Y"}}}'),
    ("{{len.x}}", "{}"),
    ("{{.x.}}", '{"x": 1}'),
    ("{{..x}}", "{}"),
    ("{{(.x}}", "{}"),
    ("{{.x)}}", "{}"),
    ("{{(((.x)))}}", '{"x": "deep"}'),
    ('{{"a" "b"}}', "{}"),
    ("{{nofunc}}", "{}"),
    ("{{$undefined}}", "{}"),
    ("{{.x y}}", "{}"),
    ("{{", "{}"),
    ("{{.x", "{}"),
    ("a }} b {{ .x }}", '{"x": 1}'),
    ("{{.x}}}", '{"x": 1}'),
    ("{{{.x}}", '{"x": 1}'),
    ("{{ .x , }}", '{"x": 1}'),
    ("{{ .x ! }}", '{"x": 1}'),
    ("{{ .x :}}", '{"x": 1}'),
    ("{{ .x \v }}", '{"x": 1}'),
    # literals
    (
        "{{1_000}} {{0x1F}} {{0o17}} {{0b101}} {{017}} {{1.5}} {{1e3}} {{.5}} {{-0}} {{+5}} {{0x1p4}} {{1.}} {{0X1F}} {{0_1}} {{0x_1F}} {{1_0.5}}",
        "{}",
    ),
    ("{{'a'}} {{'\\n'}} {{'\\x41'}} {{'é'}} {{'\\''}} {{'\"'}} {{'\\u00e9'}} {{'\\101'}}", "{}"),
    ("{{1_}}", "{}"),
    ("{{1__0}}", "{}"),
    ("{{08}}", "{}"),
    ("{{09.5}}", "{}"),
    ("{{1e}}", "{}"),
    ("{{0x}}", "{}"),
    ("{{1.5.5}}", "{}"),
    ("{{99999999999999999999}}", "{}"),
    ("{{18446744073709551615}}", "{}"),
    ("{{1e400}}", "{}"),
    ("{{1e-400}}", "{}"),
    ("{{0x1.8p1}} {{-0x1p-2}} {{1E2}} {{1e+2}} {{1e-2}}", "{}"),
    ("{{1a}}", "{}"),
    ("{{''}}", "{}"),
    ("{{'ab'}}", "{}"),
    ("{{'\\\"'}}", "{}"),
    ("{{'a}}", "{}"),
    ('{{"a\\tb\\n\\u00e9\\x41\\101\\\\\\"\\a\\v\\f\\r\\U0001F600"}}', "{}"),
    ("{{`raw\\n{{`}}", "{}"),
    ('{{"\\q"}}', "{}"),
    ('{{"\\\'"}}', "{}"),
    ('{{"\\400"}}', "{}"),
    ('{{"\\ud800"}}', "{}"),
    ('{{"unterminated}}', "{}"),
    ("{{`unterminated}}", "{}"),
    ('{{"{{"}}|{{ "}}" }}', "{}"),
    ('{{"\\xc3\\xa9"}}', "{}"),
    ('{{true}} {{false}} {{printf "%v" true}}', "{}"),
    # what OPA's decoding of vars refuses
    ("{{.}}", '{"s": {1, 2}}'),
    ("{{.}}", '{"s": set()}'),
    ("{{.}}", '{"m": {1: "a"}}'),
    ("{{.}}", '{"m": {["a"]: "a"}}'),
    ("{{.s}}", '{"s": "bell\\u0007"}'),
    ("{{.s}}", '{"s": "del\\u007f"}'),
    ("{{.s}}", '{"s": "vt\\u000b"}'),
    ("{{.s}}", '{"s": "nul\\u0000"}'),
    ("{{.s}}", '{"s": "\\b\\f\\n\\r\\t ok"}'),
    ("{{.s}}", '{"s": "nel\\u0085 nbsp\\u00a0 zwsp\\u200b shy\\u00ad"}'),
    ("{{.s}}", '{"s": "tag\\udb40\\udc01"}'),
    ("{{.s}}", '{"s": "emoji😀 CJK𠀀"}'),
    ("{{.}}", '{"bell\\u0007": 1}'),
    ("{{.}}", '{"a": [[[{"b": [null, {"c": {}}]}]]]}'),
]

# More of what policies write, and of Go's rules around it.
CASES += [
    ('{{printf "%s has %v vulnerabilities (max %v)" .name .n .f}}', DATA),
    ('{{.n}} vulnerabilit{{if eq .n "1"}}y{{else}}ies{{end}}', '{"n": 1}'),
    ('{{if eq .kind "a" "b"}}ab{{else}}other{{end}}', '{"kind": "b"}'),
    ("{{lt .a .b}} {{gt .a .b}}", '{"a": 10, "b": 9}'),
    ("{{not .zero}} {{if .zero}}zero is true{{end}}", "input"),
    ('{{.n | printf "%v!"}}|{{.n | len}}', DATA),
    ("{{range $k, $v := .}}{{$k}}{{end}}", '{"b": 1, "B": 2, "é": 3, "a": 4, "_": 5, "A1": 6}'),
    ("{{.}}", '{"b": 1, "B": 2, "é": 3, "a": 4, "_": 5}'),
    ('{{$x := "outer"}}{{range .l}}{{$x := .}}{{end}}{{$x}}', '{"l": [1]}'),
    ('{{$x := "outer"}}{{range .l}}{{$x = .}}{{end}}{{$x}}', '{"l": [1, 2]}'),
    ("{{with .a}}{{$.b}}{{.c}}{{end}}", '{"a": {"c": "C"}, "b": "B"}'),
    (
        '{{range $k, $v := .m}}{{if eq $k "b"}}{{break}}{{end}}{{$k}}{{end}}',
        '{"m": {"a": 1, "b": 2, "c": 3}}',
    ),
    ('{{define "T"}}{{/* a\nb */}}{{$.x}}{{end}}{{template "T" .}}', '{"x": "X"}'),
    ('{{define "template"}}body{{end}}\u00a0\u2003', "{}"),
    ('{{define "template"}}body{{end}}\u001c', "{}"),
    (
        "{{range .l}}{{.name}}: {{range .vulns}}{{.id}}({{.severity}}) {{end}}\n{{end}}",
        '{"l": [{"name": "a", "vulns": [{"id": "CVE-1", "severity": "HIGH"}]}, {"name": "b", "vulns": []}]}',
    ),
    ("{{range $i, $e := .l}}{{if $i}}, {{end}}{{$e}}{{end}}", '{"l": ["x", "y", "z"]}'),
    ("{{len .l | eq 3}}|{{eq (len .l) 3}}|{{if gt (len .l) 2}}many{{end}}", '{"l": [1, 2, 3]}'),
    ('{{printf "%q" .}}', '{"k": "v"}'),
    ("{{.a}}{{.b}}", '{"a": "<no value>", "b": "x"}'),
    ('{{printf "%v" "<no value>"}}', "{}"),
]

# Floating-point and integer constants through fmt's verbs.
FLOATS = [
    0.1, 1 / 3, 2 / 3, 1e-07, 123456.789, 1e15, 1e16, 1.5e300, 5e-324, 1.7976931348623157e308,
    0.5, 2.5, 1.005, 1234567.0, 100.0, 1e100, 9.995, 0.045, -2.675, 1e-05, 0.0001, 999999.5,
    12345678.9, -0.0, 0.0, 1e21, 1e20, 123456789012345680.0, 0.000123456,
]  # fmt: skip
FLOAT_VERBS = (
    "%v|%e|%E|%f|%.0f|%.1f|%.2f|%.3e|%g|%.3g|%.10g|%G|%#g|%#v|%8.2f|%-10.3e|%+g|% g|%010.4f|"
    "%.15e|%.30f|%#.0e|%#.3f|%.0g|%#.0g|%+.0f|% 012.3e|%5.0f"
)
CASES += [
    (f'{{{{printf "{FLOAT_VERBS}"' + f" {f!r}" * FLOAT_VERBS.count("%") + "}}", "{}")
    for f in FLOATS
]
INTS = [0, 1, -1, 42, 255, -255, 65535, 1 << 31, -(1 << 63), (1 << 63) - 1, 1000000, 0x1F600]
INT_VERBS = (
    "%d|%5d|%-5d|%05d|%x|%X|%#x|%o|%#o|%O|%b|%#b|%+d|% d|%.3d|%08.3d|%c|%q|%U|%#U|%v|%10v|%s|"
    "%f|%+q|%-6c|%#X|%#O|%x"
)
CASES += [(f'{{{{printf "{INT_VERBS}"' + f" {i}" * INT_VERBS.count("%") + "}}", "{}") for i in INTS]

# Whole calls, for the operands' types (through the input, which OPA's type checker does not
# know: it refuses such literals before evaluation).
EXPRESSIONS_EXTRA = [
    "strings.render_template(input.neg, {})",
    'strings.render_template("x", input.list)',
    'strings.render_template("x", input.null)',
    "strings.render_template(input.list, {})",
    'strings.render_template("{{.}}", input.object)',
]

EXPRESSIONS = [
    f"strings.render_template({json.dumps(template)}, {variables})" for template, variables in CASES
] + EXPRESSIONS_EXTRA

MODULE = "package t\n\n" + "\n".join(
    f"r{index} := {expression}" for index, expression in enumerate(EXPRESSIONS)
)


def _ours() -> dict[int, Any]:
    module = analyse_module("t.rego", MODULE)
    check_calls([module])  # strings.render_template is no longer refused
    engine = RegoEngine([module], {})
    engine.set_input_json(json.dumps(INPUT))
    return {index: engine.eval_rule(f"data.t.r{index}") for index in range(len(EXPRESSIONS))}


def _opa(opa_bin: str, tmp: Path) -> dict[int, Any]:
    path = tmp / "t.rego"
    path.write_text(MODULE)
    (tmp / "input.json").write_text(json.dumps(INPUT))
    proc = subprocess.run(
        [opa_bin, "eval", "-f", "json", "-d", str(path), "-i", str(tmp / "input.json"), "data.t"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    values = json.loads(proc.stdout)["result"][0]["expressions"][0]["value"]
    return {index: values.get(f"r{index}") for index in range(len(EXPRESSIONS))}


@pytest.fixture(scope="module")
def answers(opa_bin: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[int, Any], ...]:
    return _ours(), _opa(opa_bin, tmp_path_factory.mktemp("render_template"))


@pytest.mark.parametrize(
    "index", range(len(EXPRESSIONS)), ids=[f"{i}:{e[24:64]}" for i, e in enumerate(EXPRESSIONS)]
)
def test_the_value_is_opas(index: int, answers: tuple[dict[int, Any], ...]) -> None:
    ours, theirs = answers
    assert ours[index] == theirs[index], EXPRESSIONS[index]


def test_the_comparison_is_not_vacuous(answers: tuple[dict[int, Any], ...]) -> None:
    _, theirs = answers
    defined = [i for i in theirs if theirs[i] is not None]
    assert len(defined) > len(EXPRESSIONS) // 2
    assert len(EXPRESSIONS) - len(defined) > 50  # and many errors, undefined in both
    assert theirs[0] == "plain text"


def test_a_policy_loads_and_renders() -> None:
    module = analyse_module(
        "p.rego",
        "package p\n\nimport rego.v1\n\n"
        "deny contains msg if {\n"
        "\tsome image in input.images\n"
        "\timage.critical > 0\n"
        '\tmsg := strings.render_template("{{.name}}: {{.critical}} critical{{if .fixable}} '
        '(fixable){{end}}", image)\n'
        "}\n",
    )
    check_calls([module])
    engine = RegoEngine([module], {})
    engine.set_input_json(
        json.dumps(
            {
                "images": [
                    {"name": "a", "critical": 2, "fixable": True},
                    {"name": "b", "critical": 0},
                ]
            }
        )
    )
    assert engine.eval_rule("data.p.deny") == {"a: 2 critical (fixable)"}


@pytest.mark.parametrize(
    ("template", "variables"),
    [
        ('{{printf "%x" 1.5}}', {}),  # Go writes a hexadecimal float
        ('{{printf "%p" .}}', {}),  # an address
        ('{{printf "%w" 1}}', {}),
        ("{{1i}}", {}),
        ("{{1+2i}}", {}),
        ('{{"\\xff"}}', {}),  # a Go string that is not UTF-8
        ('{{slice "é" 0 1}}', {}),
        ("{{slice .l 0 2}}", {"l": [1]}),  # Go allows it up to the slice's unknown capacity
        ("{{.x}}", {"x": 1e-07}),  # OPA prints the number's text, which regorus does not keep
        ("{{.x}}", {"x": 1.5e300}),
        ("{{.x}}", {"x": 0.1 + 0.2}),  # 0.3 in OPA, whose arithmetic is more precise
        ("{{.x}}", {"x": 1 / 3}),
        ("{{range 2000000}}{{end}}", {}),  # beyond the bound on work
    ],
)
def test_what_is_out_of_reach_is_an_error(template: str, variables: dict[str, Any]) -> None:
    with pytest.raises(TemplateOutOfReach):
        render_template(template, variables)


def test_nesting_beyond_python_s_stack_is_an_error() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(TemplateOutOfReach):
        render_template("{{.}}", {"d": deep})
    with pytest.raises(TemplateOutOfReach):
        render_template("{{" + "(" * 5000 + "1" + ")" * 5000 + "}}", {})
