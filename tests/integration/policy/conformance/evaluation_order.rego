package cloudsmith

# Constructs whose evaluation regorus got wrong before sbomgate's patch 0.13.0+sbomgate.10:
# a negated unification named before the literal that binds its variable, a key-value
# membership test on a set, rules of a package reached through a generic ref head beside a
# static one, and a builtin replaced by a builtin with `with`.

import rego.v1

default match := false

match if count(reason) > 0

tag_names contains t.name if some t in input.v0.package.tags

# `not n = name_of(1)` runs after `n = name_of(2)` binds n, as OPA orders them.
name_of(1) := "first"

name_of(2) := input.v0.package.name

reason contains "named apart from the first" if {
	not n = name_of(1)
	n = name_of(2)
}

# A set's element is its own key.
reason contains sprintf("tagged %s", [name]) if {
	some name in tag_names
	name, name in tag_names
}

reason contains "never a key of another element" if {
	some name in tag_names
	"other", name in tag_names
}

# `by_format[f].names` (generic) and `by_format.python.names` (static) make one set.
by_format[f].names contains n if {
	f := input.v0.package.format
	n := input.v0.package.name
}

by_format.python.names contains "requests"

reason contains sprintf("python names %v", [by_format.python.names]) if {
	input.v0.package.format == "python"
}

reason contains sprintf("%d words in the name", [n]) if {
	words := split(input.v0.package.name, "-")
	n := count(words) with count as object.union_n
}

reason contains sprintf("%d tags, counted by a replaced builtin", [n]) if {
	n := object.union_n([t | some t in tag_names]) with object.union_n as count
}
