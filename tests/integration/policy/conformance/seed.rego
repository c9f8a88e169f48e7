# Cloudsmith's seed example, verbatim in shape: a keyword (`package`) used as a field.
package cloudsmith

import rego.v1

default match := false

match if count(reason) > 0

reason contains msg if {
	pkg := input.v0.package
	pkg.format == "python"
	pkg.name == "h11"
	semver.compare(pkg.version, "0.16.0") == -1
	msg := sprintf("h11 %v is older than 0.16.0 (CVE-2025-43859)", [pkg.version])
}
