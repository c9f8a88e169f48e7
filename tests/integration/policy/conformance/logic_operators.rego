# OPA's logic operators (`and`, `or`, explicit operand bodies, groups, `not { }`) and keywords
# that begin a reference (`default.allowed`), read by regorus through sbomgate's patch: each
# operand in its own scope, one solution or none, an operand that errs or reads a missing
# field simply fails. Every odd input of inputs.yaml goes through them.
package cloudsmith

import future.keywords.and
import future.keywords.not
import future.keywords.or
import rego.v1

default match := false

match if count(reason) > 0

default.allowed := {"crit-lib"}

allowed contains name if default.allowed[name]

copyleft if {
	startswith(input.v0.package.license.oss_license.spdx_identifier, "GPL") or startswith(input.v0.package.license.oss_license.spdx_identifier, "LGPL")
}

reason contains "malicious or critical" if {
	{ some v in input.v0.osv; startswith(v.id, "MAL-") } or { some v in input.v0.osv; some s in v.severity; s.numerical_score >= 9 }
}

reason contains "copyleft and not allowed" if {
	copyleft and not input.v0.package.name in allowed
}

reason contains "deprecated npm" if {
	(input.v0.package.format == "npm" or input.v0.package.format == "pypi") and { some t in input.v0.package.tags; startswith(t.name, "deprecated") }
}

reason contains "nothing known" if {
	not { input.v0.osv; input.v0.package.license }
}

reason contains "neither identity nor repository" if {
	not (input.v0.identity.name or input.v0.repository.name)
}

reason contains msg if {
	some name in [input.v0.package.name]
	count(name) > 3 and lower(name) != name or to_number(input.v0.package.version) > 100
	msg := sprintf("odd name or big version: %v", [name])
}
