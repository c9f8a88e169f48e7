# `some .. in` over facts that may be null, strings or numbers (OPA: the iteration is
# undefined, nothing more), in every place a policy puts it: helpers used under `not` and
# `every`, comprehensions, functions, key-value and pattern forms, a brace-less body, a
# variable named like a rule. sbomgate rewrites these at load time (policy/_rewrite.py).
package cloudsmith

import rego.v1

default match := false

match if count(reason) > 0

advisory_ids contains id if {
	some record in input.v0.osv
	id := record.id
}

scores contains [i, score] if {
	some i, record in input.v0.osv
	some severity in record.severity
	score := severity.numerical_score
}

malicious if {
	some id in advisory_ids
	startswith(id, "MAL-")
}

fixed_somewhere if {
	some record in input.v0.osv
	some affected in record.affected
	some range in affected.ranges
	some event in range.events
	event.fixed
}

tag_names(tags) := {name | some tag in tags; name := tag.name}

deprecated contains name if some name in tag_names(input.v0.package.tags)

id := "shadowed by the iteration below"

reason contains msg if {
	malicious
	msg := sprintf("%v is known malware", [input.v0.package.name])
}

reason contains msg if {
	not fixed_somewhere
	count(advisory_ids) > 0
	msg := sprintf("no fixed version for %v", [sort(advisory_ids)])
}

reason contains msg if {
	every id in advisory_ids {
		some [_, score] in scores
		score > 5
		id != ""
	}
	count(scores) > 0
	msg := sprintf("every advisory scores over 5: %v", [sort([s | some [_, s] in scores])])
}

reason contains msg if {
	some id in advisory_ids
	startswith(id, "PYSEC")
	msg := sprintf("python advisory %v", [id])
}

reason contains msg if {
	count(deprecated) > 1
	msg := sprintf("deprecated tags: %v", [sort(deprecated)])
}

reason contains msg if {
	some key, value in input.v0.identity.qualifiers
	msg := sprintf("qualifier %v=%v", [key, value])
}

reason contains "the osv record is not a list" if {
	not is_array(input.v0.osv)
	count([r | some r in input.v0.osv]) == 0
	input.v0.osv != null
}
