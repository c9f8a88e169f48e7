# Builtin and type errors on odd facts (OPA's default, non-strict mode: the failing expression is
# undefined, nothing more) in every place a policy puts them: a helper under `not`, a partial
# set's element, a comprehension's, a function with `else`, arithmetic, a complete rule read by
# another. Until issue 17 the failing rule definition was undefined as a whole, and the first two
# reasons below never appeared where OPA gives them (a deny that failed open).
package cloudsmith

import rego.v1

default match := false

match if count(reason) > 0

has_advisories if count(input.v0.osv) > 0

names contains lower(name) if some name in [input.v0.package.name, "Fixed"]

later_names contains lower(name) if some name in ["Fixed", input.v0.package.name]

lowered[name] := lower(name) if some name in ["Fixed", input.v0.package.name]

upper_name := upper(input.v0.package.name)

numeric_version := to_number(input.v0.package.version)

prefix(s) := substring(s, 0, 3)

label(s) := upper(s) if {
	startswith(s, "0")
} else := concat("-", ["v", s])

reason contains "no advisories listed" if not has_advisories

reason contains msg if {
	count(names) > 1
	msg := sprintf("names %v", [sort(names)])
}

reason contains "the name is not a string" if not upper_name

reason contains msg if {
	ids := [lower(record.id) | some record in input.v0.osv]
	count(ids) > 0
	msg := sprintf("advisories %v", [ids])
}

reason contains msg if {
	p := prefix(input.v0.package.name)
	msg := sprintf("prefix %v", [p])
}

reason contains msg if {
	l := label(input.v0.package.version)
	msg := sprintf("label %v", [l])
}

reason contains msg if {
	half := numeric_version % 2
	msg := sprintf("numeric version, odd: %v", [half == 1])
}

reason contains msg if {
	tags := {t | some t in input.v0.package.tags} - 1
	msg := sprintf("tags %v", [tags])
}

reason contains msg if {
	count(later_names) + count(lowered) > 0
	msg := sprintf("later names %v, lowered %v", [sort(later_names), lowered])
}

reason contains msg if {
	extra := input.v0.package.tags | {"x"}
	msg := sprintf("more tags %v", [count(extra)])
}
