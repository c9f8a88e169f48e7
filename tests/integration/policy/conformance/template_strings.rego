# OPA's template strings (`$"..."` and its backquoted, multi-line form), read by regorus through
# sbomgate's patch: each `{expression}` shows its one value (a string bare, anything else as
# Rego writes it), `<undefined>` where it has none; one under `not`, with its terms bound first.
package cloudsmith

import rego.v1

default match := false

match if count(reason) > 0

reason contains $"{input.v0.package.name} {input.v0.package.version} is blocked" if {
	input.v0.package.format == "npm"
}

reason contains $"licence: {input.v0.package.license.oss_license.spdx_identifier}" if {
	not startswith($"{input.v0.package.license.oss_license.spdx_identifier}", "MIT")
}

reason contains msg if {
	some v in input.v0.osv
	msg := $`advisory {v.id}
aliases {object.get(v, "aliases", [])}, severity {[s.numerical_score | some s in v.severity]}`
}

reason contains $"tags {{t | some t in input.v0.package.tags}} of {count(input.v0.package.tags)}" if {
	is_array(input.v0.package.tags)
}

reason contains $"identity \{{input.v0.identity}}" if input.v0.identity.qualifiers
