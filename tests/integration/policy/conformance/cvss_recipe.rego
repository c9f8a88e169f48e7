package cloudsmith

import rego.v1

default match := false

max_epss := 0.1

match if count(reason) > 0

reason[msg] if {
	some vuln in input.v0.osv
	some sev in vuln.severity
	sev.numerical_score >= 7.0
	some affected in vuln.affected
	some r in affected.ranges
	some event in r.events
	event.fixed
	msg := sprintf("%v: CVSS %.1f, fixed in %v", [vuln.id, sev.numerical_score, event.fixed])
}
