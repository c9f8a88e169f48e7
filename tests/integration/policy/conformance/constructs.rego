# Rego constructs Cloudsmith-style policies use: every, some-in, with, else, comprehensions,
# functions, object.get defaults, string and number builtins, and data.
package cloudsmith

import rego.v1

default match := false

match if count(reason) > 0

default allowed_formats := ["python", "npm"]

allowed_formats := data.sbomgate.formats

reason contains msg if {
	not input.v0.package.format in allowed_formats
	msg := sprintf("format %v is not allowed", [input.v0.package.format])
}

reason contains msg if {
	tags := [t.name | some t in input.v0.package.tags]
	count(tags) > 0
	every t in tags {
		startswith(t, "deprecated")
	}
	msg := sprintf("all tags deprecated: %v", [concat(",", tags)])
}

reason contains msg if {
	upper(input.v0.package.name) == "EVIL"
	msg := "evil by name"
}

reason contains msg if {
	severity_label(input.v0.package.name) == "high"
	msg := sprintf("name %v classified high", [input.v0.package.name])
}

severity_label(name) := "high" if {
	startswith(name, "crit")
} else := "low"

reason contains msg if {
	flagged with input.v0.package.name as "crit-override"
	input.v0.package.name == "with-test"
	msg := "with rewrote the input"
}

flagged if severity_label(input.v0.package.name) == "high"

reason contains msg if {
	n := to_number(input.v0.package.version)
	n > 100
	msg := sprintf("numeric version %v over 100", [n])
}

reason contains msg if {
	q := input.v0.identity.qualifiers
	q.arch == "i386"
	msg := sprintf("arch %v", [q.arch])
}
