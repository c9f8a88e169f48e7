# Template strings in a function's arguments (`f($"{x}") := ...`), which OPA's compiler takes
# out of the head: the call matches where the argument's value is the template's text, with
# its variables bound by the body (each body of an else chain binds its own).
package cloudsmith

import rego.v1

default match := false

match if count(reason) > 0

blocked := [["npm", "evil", "malware"], ["python", "h11", "request smuggling"]]

why($"{fmt}:{name}") := text if {
	some [fmt, name, text] in blocked
}

reason contains $"{input.v0.package.name}: {why(key)}" if {
	key := $"{input.v0.package.format}:{input.v0.package.name}"
}

# An array argument holding a template; an else chain, each body with its own variables.
tagged([$"deprecated-{suffix}", _]) := $"deprecated ({suffix})" if {
	suffix := "x"
} else := "deprecated (another)" if {
	suffix := "y"
}

reason contains tagged([t.name, input.v0.package.name]) if {
	some t in input.v0.package.tags
}

# A multi-line template as an argument, next to a plain one.
licence(spdx, $`{spdx} ({kind})`) := kind if {
	some kind in ["copyleft", "weak copyleft"]
}

reason contains $"{input.v0.package.name} is {kind}" if {
	spdx := input.v0.package.license.oss_license.spdx_identifier
	kind := licence(spdx, $`{spdx} (copyleft)`)
}
