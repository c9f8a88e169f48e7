package cloudsmith

import rego.v1

default match := false

min_age_days := 14

match if count(reason) > 0

reason contains msg if {
	published := time.parse_rfc3339_ns(input.v0.package.upstream_metadata.published_at)
	age_days := (time.now_ns() - published) / ((24 * 60) * 60e9)
	age_days < min_age_days
	msg := sprintf("%v was published %.1f days ago (minimum %d)", [input.v0.package.name, age_days, min_age_days])
}
