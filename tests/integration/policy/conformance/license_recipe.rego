package cloudsmith

import rego.v1

copyleft := {"GPL-2.0-only", "GPL-3.0-only", "AGPL-3.0-only", "LGPL-2.1-only"}

default match := false

match if count(reason) > 0

reason contains msg if {
	spdx := input.v0.package.license.oss_license.spdx_identifier
	spdx in copyleft
	msg := sprintf("license %v is copyleft", [spdx])
}

reason contains msg if {
	raw := lower(input.v0.package.license.raw_license)
	contains(raw, "general public")
	msg := sprintf("raw license %q looks copyleft", [input.v0.package.license.raw_license])
}
