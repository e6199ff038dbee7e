"""Commit message templates render as Flux's Go text/template + sprig renders them.

Expected strings are worked out from Go's rules (trim markers strip every space and
newline on their side, map keys range sorted, ``fmt`` prints values), so a user's
existing ``messageTemplate`` gives the same commit message under fluxd.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fluxd.image.template import TemplateError, render


@dataclass(frozen=True)
class NamespacedName:
    Namespace: str
    Name: str

    def __str__(self) -> str:
        return f"{self.Namespace}/{self.Name}"


@dataclass(frozen=True, order=True)
class ObjectId:
    APIVersion: str
    Kind: str
    Name: str
    Namespace: str


@dataclass(frozen=True)
class Change:
    OldValue: str
    NewValue: str
    Setter: str


APP = ObjectId("apps/v1", "Deployment", "app", "prod")
WEB = ObjectId("apps/v1", "Deployment", "web", "prod")
CRON = ObjectId("batch/v1", "CronJob", "report", "prod")
APP_CHANGE = Change("ghcr.io/acme/app:1.0.0", "ghcr.io/acme/app:1.0.1", "flux-system:app")
WEB_CHANGE = Change("ghcr.io/acme/web:2.0.0", "ghcr.io/acme/web:2.1.0", "flux-system:web")
CRON_CHANGE = Change("ghcr.io/acme/report:7", "ghcr.io/acme/report:8", "flux-system:report")

DATA = {
    "AutomationObject": NamespacedName("flux-system", "apps"),
    "Changed": {
        # Insertion order is deliberately not sorted: Go ranges over maps in key order.
        "FileChanges": {
            "deploy/web.yaml": {WEB: [WEB_CHANGE]},
            "deploy/app.yaml": {APP: [APP_CHANGE], CRON: [CRON_CHANGE]},
        },
        "Objects": {WEB: [WEB_CHANGE], CRON: [CRON_CHANGE], APP: [APP_CHANGE]},
        "Changes": [APP_CHANGE, CRON_CHANGE, WEB_CHANGE],
    },
    "Values": {"env": "prod"},
}

FLUX_DOCUMENTED_TEMPLATE = """Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end -}}

Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind }} {{ $resource.Name }}
  Changes:
{{- range $_, $change := $changes }}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
{{ end -}}
{{ end -}}
"""


def test_flux_documented_template_renders_exactly_as_go() -> None:
    # "{{ end -}}" eats the blank line before "Objects:", "{{- range" joins "Changes:" to
    # the first change, and objects sort by (APIVersion, Kind, Name, Namespace).
    assert render(FLUX_DOCUMENTED_TEMPLATE, DATA) == (
        "Automated image update\n"
        "\n"
        "Automation name: flux-system/apps\n"
        "\n"
        "Files:\n"
        "- deploy/app.yaml\n"
        "- deploy/web.yaml\n"
        "Objects:\n"
        "- Deployment app\n"
        "  Changes:\n"
        "    - ghcr.io/acme/app:1.0.0 -> ghcr.io/acme/app:1.0.1\n"
        "- Deployment web\n"
        "  Changes:\n"
        "    - ghcr.io/acme/web:2.0.0 -> ghcr.io/acme/web:2.1.0\n"
        "- CronJob report\n"
        "  Changes:\n"
        "    - ghcr.io/acme/report:7 -> ghcr.io/acme/report:8\n"
    )


def test_flux_documented_changes_list_template() -> None:
    template = (
        "{{ range .Changed.Changes }}{{ print .OldValue }} -> {{ println .NewValue }}{{ end }}"
    )
    assert render(template, DATA) == (
        "ghcr.io/acme/app:1.0.0 -> ghcr.io/acme/app:1.0.1\n"
        "ghcr.io/acme/report:7 -> ghcr.io/acme/report:8\n"
        "ghcr.io/acme/web:2.0.0 -> ghcr.io/acme/web:2.1.0\n"
    )


def test_message_template_values_and_a_missing_value() -> None:
    assert render("Env: {{ .Values.env }} {{ .Values.missing }}", DATA) == "Env: prod <no value>"


def test_a_missing_value_stays_missing_down_a_field_chain_and_is_false() -> None:
    template = "{{ .Values.missing.deeper }}|{{ if .Values.missing }}yes{{ else }}no{{ end }}"
    assert render(template, DATA) == "<no value>|no"


def test_sprig_pipeline_in_a_one_line_subject() -> None:
    template = (
        "chore({{ .Values.env | upper }}): update "
        "{{ range $i, $c := .Changed.Changes }}{{ if $i }}, {{ end }}"
        '{{ $c.NewValue | splitList ":" | last }}'
        "{{ end }}"
    )
    assert render(template, DATA) == "chore(PROD): update 1.0.1, 8, 2.1.0"


def test_objects_by_kind_with_lower_and_trimmed_whitespace() -> None:
    template = """{{- range $obj, $changes := .Changed.Objects -}}
{{ $count := len $changes -}}
- {{ $obj.Kind | lower }}/{{ $obj.Name }} ({{ $count }} {{ plural "change" "changes" $count -}} )
{{ end -}}"""
    assert render(template, DATA) == (
        "- deployment/app (1 change)\n- deployment/web (1 change)\n- cronjob/report (1 change)\n"
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("a  {{- 1 -}}  b", "a1b"),
        ("a\n\n{{- 1 }}\n\nb", "a1\n\nb"),
        ("a {{ 1 -}}\n\t b", "a 1b"),
        ("x {{/* a comment */}} y", "x  y"),
        ("x {{- /* a comment */ -}} y", "xy"),
        ("{{-3}}", "-3"),
        ('{{ `raw\\n` }}|{{ "tab\\tq\\"\\u00e9" }}', 'raw\\n|tab\tq"é'),
    ],
)
def test_text_trim_markers_comments_and_literals(template: str, expected: str) -> None:
    assert render(template, {}) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ true }} {{ false }} {{ 42 }} {{ -7 }} {{ 0x1F }} {{ 'a' }}", "true false 42 -7 31 97"),
        (
            "{{ 3.5 }} {{ 1e6 }} {{ 123456.0 }} {{ 0.0001 }} {{ 0.00001 }}",
            "3.5 1e+06 123456 0.0001 1e-05",
        ),
        ("{{ .Values }}", "map[env:prod]"),
        ('{{ .Changed.Changes | len }} {{ list 1 "a" nil }}', "3 [1 a <nil>]"),
        (
            "{{ index .Changed.Changes 0 }}",
            "{ghcr.io/acme/app:1.0.0 ghcr.io/acme/app:1.0.1 flux-system:app}",
        ),
        (
            "{{ .AutomationObject }} {{ list .AutomationObject }}",
            "flux-system/apps [flux-system/apps]",
        ),
        ("{{ .AutomationObject.Name }}", "apps"),
        ('{{ dict "b" 2 "a" 1 }}', "map[a:1 b:2]"),
    ],
)
def test_values_print_as_go_fmt_prints_them(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


def test_a_map_keyed_by_structs_prints_sorted_struct_keys() -> None:
    data = {"Objects": {WEB: ["w"], APP: ["a"]}}
    assert render("{{ .Objects }}", data) == (
        "map[{apps/v1 Deployment app prod}:[a] {apps/v1 Deployment web prod}:[w]]"
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "2"),
        ("{{ $x := 1 }}{{ with $y := 5 }}{{ $x }}{{ $y }}{{ end }}", "15"),
        ('{{ range $v := list "a" "b" }}{{ $v }}{{ . }}{{ end }}', "aabb"),
        ('{{ range $i, $v := list "a" "b" }}{{ $i }}={{ $v }};{{ end }}', "0=a;1=b;"),
        ('{{ range $k, $v := dict "z" 1 "a" 2 }}{{ $k }}{{ $v }}{{ end }}', "a2z1"),
        ("{{ range 3 }}{{ . }}{{ end }}|{{ range $i := 2 }}{{ $i }}{{ end }}", "012|01"),
        ("{{ range list }}x{{ else }}empty{{ end }}", "empty"),
        ("{{ range 1000000000000 }}{{ . }}{{ break }}{{ end }}", "0"),
        ("{{ range .Nothing }}x{{ else }}none{{ end }}", "none"),
        (
            "{{ range list 1 2 3 4 5 }}{{ if eq . 2 }}{{ continue }}{{ end }}"
            "{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}",
            "13",
        ),
        (
            "{{ range $i, $c := .Changed.Changes }}{{ $.Values.env }}{{ $i }}{{ end }}",
            "prod0prod1prod2",
        ),
        ('{{ if .Nope }}a{{ else if eq .Values.env "prod" }}b{{ else }}c{{ end }}', "b"),
        ('{{ if 0 }}a{{ else if "" }}b{{ else }}c{{ end }}', "c"),
        ("{{ with .Values.env }}[{{ . }}]{{ else }}none{{ end }}", "[prod]"),
        ("{{ with .Nope }}x{{ else with .Values.env }}{{ . }}!{{ end }}", "prod!"),
        ("{{ with .Values.missing }}x{{ else }}{{ .Values.env }}{{ end }}", "prod"),
        ("{{ (index .Changed.Changes 1).NewValue }}", "ghcr.io/acme/report:8"),
        (
            "{{ range .Changed.Objects }}{{ range . }}{{ .Setter }} {{ end }}{{ end }}",
            ("flux-system:app flux-system:web flux-system:report "),
        ),
    ],
)
def test_control_structures_and_variables(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


def test_a_variable_declared_in_range_does_not_leak_out_of_it() -> None:
    with pytest.raises(TemplateError, match=r"undefined variable '\$v'"):
        render("{{ range $v := list 1 }}{{ end }}{{ $v }}", {})


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            '{{ printf "%s=%d %v %q %t %x %X %%" "n" 3 .Values "q" true 255 255 }}',
            'n=3 map[env:prod] "q" true ff FF %',
        ),
        (
            '{{ printf "[%5s|%-5s|%05d|%.2s|%+d]" "ab" "cd" 42 "xyz" 7 }}',
            "[   ab|cd   |00042|xy|+7]",
        ),
        (
            '{{ printf "%.2f %v %s" 3.14159 .AutomationObject .AutomationObject }}',
            "3.14 flux-system/apps flux-system/apps",
        ),
        ('{{ printf "%d %s" "x" }}', "%!d(string=x) %!s(MISSING)"),
        ('{{ printf "%s" "a" 1 }}', "a%!(EXTRA int=1)"),
        (
            '{{ printf "%+v" (index .Changed.Changes 0) }}',
            (
                "{OldValue:ghcr.io/acme/app:1.0.0 NewValue:ghcr.io/acme/app:1.0.1"
                " Setter:flux-system:app}"
            ),
        ),
        ('{{ print 1 2 "a" 3 "b" "c" }}|{{ println 1 "a" }}|', "1 2a3bc|1 a\n|"),
    ],
)
def test_printf_print_and_println_follow_go_fmt(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            '{{ and 1 0 2 }} {{ and 1 2 }} {{ or 0 "" "x" }} {{ or 0 "" }}|{{ not 0 }}',
            "0 2 x |true",
        ),
        # and/or stop evaluating at the deciding argument, as Go's do.
        ("{{ and false (index (list) 5) }} {{ or true (index (list) 5) }}", "false true"),
        (
            '{{ len "héllo" }} {{ len .Values }} {{ index .Values "env" }} '
            "{{ index (list 1 (list 2 3)) 1 0 }}",
            "6 1 prod 2",
        ),
        ('{{ slice "abcdef" 1 3 }} {{ slice (list 1 2 3) 1 }}', "bc [2 3]"),
        (
            '{{ eq 1 2 3 1 }} {{ eq "a" "b" }} {{ ne 1 2 }} {{ eq .Values.env "prod" }}',
            "true false true true",
        ),
        ('{{ lt 1 2 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1.5 2.5 }}', "true true true false"),
        ("{{ html \"<a href='x'>&\" }}", "&lt;a href=&#39;x&#39;&gt;&amp;"),
        ('{{ js "it\'s <b>" }}', "it\\'s \\u003Cb\\u003E"),
        ('{{ urlquery "a b&c/d" }}', "a+b%26c%2Fd"),
    ],
)
def test_go_builtin_functions(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            '{{ "Hello World" | lower }} {{ upper "abc" }} {{ title "hello wide-world" }}',
            "hello world ABC Hello Wide-World",
        ),
        (
            '{{ trim "  a  " }}|{{ trimAll "-" "--a--" }}|{{ trimPrefix "v" "v1.2" }}|'
            '{{ trimSuffix ".yaml" "x.yaml" }}',
            "a|a|1.2|x",
        ),
        ('{{ trunc 3 "abcdef" }} {{ trunc -2 "abcdef" }} {{ trunc 10 "ab" }}', "abc ef ab"),
        (
            '{{ abbrev 8 "hello world" }} {{ abbrev 3 "hello world" }} {{ abbrev 20 "short" }}',
            "hello... hello world short",
        ),
        (
            '{{ repeat 3 "ab" }} {{ replace "-" "_" "a-b-c" }} {{ nospace " a b\tc " }}',
            "ababab a_b_c abc",
        ),
        (
            '{{ contains "b" "abc" }} {{ hasPrefix "ghcr" "ghcr.io/x" }} '
            '{{ hasSuffix ":1" "x:2" }}',
            "true true false",
        ),
        (
            '{{ quote "a" 1 nil }} {{ squote "a" }} {{ cat "a" nil 1 true }}',
            '"a" "1" \'a\' a 1 true',
        ),
        ('{{ indent 2 "a\\nb" }}|{{ nindent 2 "c" }}', "  a\n  b|\n  c"),
        (
            '{{ join ", " (list "a" "b" 3) }} {{ splitList "," "a,b" }} {{ list "x" | join "+" }}',
            "a, b, 3 [a b] x",
        ),
        (
            "{{ first (list 1 2 3) }} {{ last (list 1 2 3) }} {{ rest (list 1 2 3) }} "
            "{{ initial (list 1 2 3) }}",
            "1 3 [2 3] [1 2]",
        ),
        (
            '{{ first (list) }} {{ uniq (list 1 1 2 1) }} {{ sortAlpha (list "b" "a" "c") }} '
            '{{ compact (list "" "a" 0 1) }}',
            "<no value> [1 2] [a b c] [a 1]",
        ),
        (
            '{{ get .Values "env" }}|{{ get .Values "x" }}|{{ keys (dict "b" 1 "a" 2) }} '
            '{{ hasKey .Values "env" }}',
            "prod||[a b] true",
        ),
        (
            '{{ .Values.nope | default "none" }} {{ default "none" .Values.env }} {{ empty "" }} '
            '{{ empty 0 }} {{ empty "x" }}',
            "none prod true true false",
        ),
        (
            '{{ coalesce "" nil "z" }} {{ ternary "yes" "no" false }} {{ toString 12 }} '
            "{{ toString .AutomationObject }}",
            "z no 12 flux-system/apps",
        ),
        (
            "{{ toJson (index .Changed.Changes 0) }}",
            '{"OldValue":"ghcr.io/acme/app:1.0.0","NewValue":"ghcr.io/acme/app:1.0.1","Setter":"flux-system:app"}',
        ),
        ('{{ toJson (dict "b" (list 1 "<") "a" nil) }}', '{"a":null,"b":[1,"\\u003c"]}'),
        ("{{ toPrettyJson .Values }}", '{\n  "env": "prod"\n}'),
        (
            '{{ b64enc "hi" }} {{ b64dec "aGk=" }} {{ sha256sum "" | trunc 12 }}',
            "aGk= hi e3b0c44298fc",
        ),
        (
            "{{ add 1 2 3 }} {{ sub 5 7 }} {{ mul 2 3 4 }} {{ div -7 2 }} {{ mod -7 2 }}",
            "6 -2 24 -3 -1",
        ),
        (
            '{{ max 1 5 3 }} {{ min 4 2 9 }} {{ int "42" }} {{ atoi "x" }} {{ add "3" 1.9 }}',
            "5 2 42 0 4",
        ),
        (
            '{{ substr 1 3 "abcdef" }} {{ substr 2 99 "abcdef" }} {{ plural "one" "many" 1 }} '
            '{{ plural "one" "many" 2 }}',
            "bc cdef one many",
        ),
        ('{{ wrap 10 "the quick brown fox jumps" }}', "the quick\nbrown fox\njumps"),
        ('{{ wrap 3 "abcdefgh ij" }}', "abcdefgh\nij"),
        # spf13/cast and strconv rules: legacy octal, "3.00", no surrounding spaces.
        (
            '{{ int "010" }} {{ int "3.00" }} {{ int " 3" }} {{ atoi " 3" }} {{ atoi "-12" }}',
            "8 3 0 0 -12",
        ),
    ],
)
def test_sprig_functions_with_sprig_argument_order(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Update {{ .Values.env", r"line 1, col 8: unclosed action"),
        (
            "ok\n{{ shout .Values.env }}",
            r"line 2, col 1: \{\{ shout \.Values\.env \}\}: function 'shout' not defined",
        ),
        (
            "{{ range .Changed.Changes }}\n- {{ .NewValue }}\n",
            r"missing \{\{end\}\} for this \{\{range\}\}",
        ),
        ('{{ template "x" }}', r"'template' action is not supported"),
        ('{{ define "x" }}y{{ end }}', r"'define' action is not supported"),
        ('{{ block "x" . }}y{{ end }}', r"'block' action is not supported"),
        ("a {{ end }}", r"line 1, col 3: \{\{ end \}\}: unexpected \{\{end\}\}"),
        ("{{ if true }}{{ else }}{{ else }}{{ end }}", r"found a second \{\{else\}\}"),
        ("{{ $nope }}", r"undefined variable '\$nope'"),
        ("{{ $nope = 1 }}", r"undefined variable '\$nope'"),
        ("{{ break }}", r"\{\{break\}\} outside \{\{range\}\}"),
        (
            "{{ range list }}{{ else }}{{ continue }}{{ end }}",
            r"\{\{continue\}\} outside \{\{range\}\}",
        ),
        ("{{/* never closed }}", r"unclosed comment"),
        ("{{/* c */ }}", r"comment ends before closing delimiter"),
        ('{{ "open }}', r"unterminated quoted string"),
        ("{{ (print 1 }}", r"unclosed left paren"),
        ("{{ }}", r"missing value for command"),
        ("{{ nil }}", r"nil is not a command"),
        ('{{ .Values.env | "x" }}', r"non executable command in pipeline stage 2"),
        ("{{ 12abc }}", r"bad number syntax"),
        ("{{ # }}", r"unrecognized character in action"),
        ("{{ $a, $b := list 1 }}", r"only range declares two variables"),
    ],
)
def test_malformed_templates_fail_at_parse_time_naming_the_problem(
    template: str, message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        render(template, DATA)


def test_an_unknown_function_is_rejected_even_on_a_branch_that_would_not_run() -> None:
    with pytest.raises(TemplateError, match="function 'env' not defined"):
        render('{{ if false }}{{ env "HOME" }}{{ end }}', DATA)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ .AutomationObject.Nope }}", r"can't evaluate field Nope in type NamespacedName"),
        ("{{ .Values.env.Deeper }}", r"can't evaluate field Deeper in type str"),
        (
            "{{ .Changed.Objects.Name }}",
            r"can't evaluate field Name in a map whose keys are not strings",
        ),
        ("{{ upper 3 }}", r"error calling upper: .*expected string; got int"),
        ("{{ lower }}", r"wrong number of args for lower: want 1 got 0"),
        ('{{ eq 1 "a" }}', r"error calling eq: incompatible types for comparison"),
        ("{{ index (list 1) 5 }}", r"error calling index: index out of range: 5"),
        ("{{ div 1 0 }}", r"error calling div: .*divide by zero"),
        ('{{ range "abc" }}{{ end }}', r"range can't iterate over abc"),
        ("{{ range -2 }}{{ end }}", r"range can't iterate over a negative number"),
        ("{{ range $i, $v := 2 }}{{ end }}", r"can't use two variables to range over an integer"),
        ("{{ .Values.env 1 }}", r"can't give argument to non-function \.Values\.env"),
        ("{{ first .Values.env }}", r"error calling first"),
    ],
)
def test_execution_errors_name_the_action(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(template, DATA)


def test_template_error_is_a_value_error_carrying_the_action_text() -> None:
    with pytest.raises(ValueError, match=r"line 3, col 5: \{\{ \.AutomationObject\.Missing \}\}"):
        render("a\nb\nc   {{ .AutomationObject.Missing }}", DATA)
