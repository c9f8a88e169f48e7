# METADATA
# title: Young projects through a proxied repository
# description: >-
#   Deny PyPI and npm packages whose project was first released fewer than
#   data.sbomgate.package_age.min_project_days days ago (default 30) when the
#   trusted repository that vouched for them proxies a public registry
#   (input.v0.repository.hosting is not "hosted"): a name an attacker
#   registered last month, a slopsquat of a hallucinated dependency, is
#   "found" through the proxy like any other. When nothing says when the
#   project was first released, the package is denied as well (a rule that
#   cannot decide does not pass it), unless
#   data.sbomgate.package_age.allow_unknown_first_release is true.
# custom:
#   action: Deny
#   precedence: 55
#   terminal: false
package cloudsmith

import rego.v1

# Reads input.v0.package.upstream_metadata.first_published_at (the project's
# first release, any version, as the vouching repository says; null: it does
# not say) and input.v0.repository.hosting ("hosted" or "proxied").
#
# Proxied means anything but an explicit "hosted": a repository entry without
# hosting (an old facts snapshot, a hand-written one) or with a value that is
# not "hosted" may pass a public registry's names through, so it is treated as
# one that does. Hosted repositories hold what the organisation put there; their
# young projects are not refused here (package_age.rego still warns about young
# versions).
#
# PyPI and npm only: their repositories say when a project began (PEP 700
# upload times, the packument's time.created), and anyone can register a name
# there. The age is input.v0.package.upstream_metadata.first_published_days_ago:
# whole days from first_published_at to sbomgate's clock at evaluation, rounded
# down (negative: dated in the future), null when the timestamp is null or not
# readable (RFC 3339, or a bare YYYY-MM-DD as midnight UTC, 1970 to 2199, a real
# calendar date). sbomgate counts it before evaluation, so this policy reads no
# clock. A value that cannot be read is unknown, never old. A first release
# dated in the future matches too. A fractional min_project_days is compared
# with whole days, so it acts as the next whole number (the side that refuses).

default match := false

# `match` reads only what decides it, not the package's name (which only the reason
# shows), so that its outcome is reused across packages (policy/outcomes.py): it holds
# exactly when `reason` has a message (a test checks both on every bundled policy's inputs).
match if {
	_proxied
	_covered
	_days >= 0
	_days < _min_project_days
}

match if {
	_proxied
	_covered
	_days < 0
}

match if {
	_proxied
	_covered
	not _known
	not _allow_unknown
}

default _min_project_days := 30

_min_project_days := d if {
	d := data.sbomgate.package_age.min_project_days
	is_number(d)
}

default _allow_unknown := false

_allow_unknown := b if {
	b := data.sbomgate.package_age.allow_unknown_first_release
	is_boolean(b)
}

_first_release_types := {"pypi", "npm"}

# ----------------------------------------------------------------- where it came from

_repository := r if {
	r := input.v0.repository
	is_object(r)
}

# The image-level evaluation: sbomgate sets input.v0.image_subject where it sets
# input.v0.sbom; reading the flag, not the SBOM, spares evaluating with the whole SBOM.
_is_image if input.v0.image_subject == true

_hosted if _repository.hosting == "hosted"

_proxied if {
	is_object(_repository)
	not _hosted
	not _is_image
}

_type := t if {
	t := input.v0.identity.canonical.type
	is_string(t)
} else := t if {
	t := input.v0.identity.purl_type
	is_string(t)
}

_covered if _type in _first_release_types

_repo_name := n if {
	n := _repository.name
	is_string(n)
	n != ""
} else := u if {
	u := _repository.url
	is_string(u)
	u != ""
} else := "the trusted repository"

# One phrase whether the repository says proxied or says nothing: both read as proxied.
_through := sprintf("%s, which is not marked hosting: hosted, so may pass a public registry's new names through", [_repo_name])

# ----------------------------------------------------------------- when the project began

# whole days (sbomgate writes whole days; a hand-written 13.5 is 13)
_days := floor(d) if {
	d := input.v0.package.upstream_metadata.first_published_days_ago
	is_number(d)
}

_known if is_number(_days)

_first := f if {
	f := input.v0.package.upstream_metadata.first_published_at
	is_string(f)
} else := "date not given"

_given if {
	v := input.v0.package.upstream_metadata.first_published_at
	v != null
}

default _unknown_why := "nothing says when the project was first released (PEP 503 HTML pages, and proxies that do not pass upload times on, do not)"

_unknown_why := "the date given for the project's first release cannot be read" if _given

# ----------------------------------------------------------------- the message

_pkg := p if {
	p := input.v0.package.purl
	is_string(p)
	p != ""
} else := sprintf("%s@%s", [n, v]) if {
	n := input.v0.package.name
	is_string(n)
	v := input.v0.package.version
	is_string(v)
} else := n if {
	n := input.v0.package.name
	is_string(n)
} else := "package"

_plural(1) := "day"

_plural(n) := "days" if n != 1

_typosquat_of := t if {
	t := input.v0.package.typosquat_of
	is_string(t)
	trim_space(t) != ""
}

default _did_you_mean := ""

_did_you_mean := sprintf(" (did you mean %s?)", [_typosquat_of])

_review := "Review it, then add it to a hosted repository or to sbomgate.allow, or fix the dependency name"

reason contains msg if {
	_proxied
	_covered
	_days >= 0
	_days < _min_project_days
	msg := sprintf("%s: the project was first released %d %s ago (%s) and came through %s: a project this young may be a slopsquat%s. %s (projects younger than %v days are refused through a proxy)", [
		_pkg, _days, _plural(_days), _first, _through, _did_you_mean, _review, _min_project_days,
	])
}

reason contains msg if {
	_proxied
	_covered
	_days < 0
	msg := sprintf("%s: the project's first release is dated in the future (%s) and it came through %s: its age cannot be checked%s. %s", [
		_pkg, _first, _through, _did_you_mean, _review,
	])
}

reason contains msg if {
	_proxied
	_covered
	not _known
	not _allow_unknown
	msg := sprintf("%s came through %s, and %s: its age cannot be checked%s. %s, or mark the repository hosting: hosted if it serves only what you put there", [
		_pkg, _through, _unknown_why, _did_you_mean, _review,
	])
}
