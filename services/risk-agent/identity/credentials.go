package identity

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Defaults of the credential hygiene thresholds (ENTRA-013).
const (
	// DefaultCredentialExpiryDays: a credential whose end date is this close
	// is expiring.
	DefaultCredentialExpiryDays = 30
	// DefaultSecretMaxAgeDays: a client secret created longer ago is due for
	// rotation.
	DefaultSecretMaxAgeDays = 180
)

// day is the unit of the thresholds.
const day = 24 * time.Hour

// spAccess is how a service principal reaches the cluster: the first
// binding (in snapshot order) that reaches it, whether any of its routes
// is cluster-wide, and each route in words.
type spAccess struct {
	m           member
	first       *binding
	clusterWide bool
	routes      []string
}

// noteSP records that m, a service principal, reaches the cluster through b.
func (e *evaluator) noteSP(m member, b *binding) {
	if m.sp == nil {
		return
	}
	if e.spReach == nil {
		e.spReach = map[string]*spAccess{}
	}
	a, ok := e.spReach[m.id()]
	if !ok {
		a = &spAccess{m: m, first: b}
		e.spReach[m.id()] = a
	}
	a.clusterWide = a.clusterWide || b.ref.GetNamespace() == ""
	if r := fmt.Sprintf("%s: %s", m.via(), b.text()); !slices.Contains(a.routes, r) {
		a.routes = append(a.routes, r)
	}
}

// azureSPs records the service principals that reach the cluster through
// a standing (not PIM eligible) Azure role assignment: their own, or one
// of a group they are a member of, at any depth of nesting (the route
// then names the group path).
func (e *evaluator) azureSPs() {
	note := func(m member, as *secureauditv1.AzureRoleAssignment) {
		if e.spReach == nil {
			e.spReach = map[string]*spAccess{}
		}
		a, ok := e.spReach[m.id()]
		if !ok {
			a = &spAccess{m: m}
			e.spReach[m.id()] = a
		}
		a.clusterWide = true
		r := fmt.Sprintf("Azure role %q at %s", as.GetRoleName(), as.GetScope())
		if len(m.path) > 0 {
			r = m.via() + ": " + r
		}
		if !slices.Contains(a.routes, r) {
			a.routes = append(a.routes, r)
		}
	}
	ids := make([]string, 0, len(e.d.assignments))
	for id := range e.d.assignments {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		for _, as := range e.d.assignments[id] {
			if as.GetEligible() {
				continue
			}
			if sp, ok := e.d.sps[id]; ok {
				note(member{sp: sp}, as)
			}
			if g, ok := e.d.groups[id]; ok {
				for _, m := range e.d.members(g) {
					if m.sp != nil {
						note(m, as)
					}
				}
			}
		}
	}
}

// credentialHygiene: ENTRA-013, the client secrets and certificates of the
// applications and service principals that reach the cluster: credentials
// past their end date and still configured, credentials expiring within
// the threshold, client secrets older than the threshold, and secrets or
// certificates held beside a federated credential. Managed identities are
// left out: Azure issues and rotates their certificates.
func (e *evaluator) credentialHygiene() {
	e.azureSPs()
	ids := make([]string, 0, len(e.spReach))
	for id := range e.spReach {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var at time.Time
	if t := e.s.Header().GetCollectedAt(); t != nil {
		at = t.AsTime()
	}
	for _, id := range ids {
		a := e.spReach[id]
		sp := a.m.sp
		if strings.EqualFold(sp.GetServicePrincipalType(), "ManagedIdentity") || len(sp.GetCredentials()) == 0 {
			continue
		}
		var expired, expiring, old, valid []*secureauditv1.ApplicationCredential
		for _, c := range sp.GetCredentials() {
			end := c.GetEnd()
			switch {
			case !at.IsZero() && end != nil && !end.AsTime().After(at):
				expired = append(expired, c)
				continue
			case !at.IsZero() && end != nil && end.AsTime().Sub(at) <= time.Duration(e.cfg.CredentialExpiryDays)*day:
				expiring = append(expiring, c)
			}
			valid = append(valid, c)
			if c.GetKind() == secureauditv1.CredentialKind_CREDENTIAL_KIND_SECRET && !at.IsZero() && c.GetStart() != nil &&
				at.Sub(c.GetStart().AsTime()) > time.Duration(e.cfg.SecretMaxAgeDays)*day {
				old = append(old, c)
			}
		}
		reach := fmt.Sprintf("%s reaches the cluster (%s).", person(a.m), strings.Join(a.routes, "; "))
		if len(expired) > 0 {
			detail := fmt.Sprintf("%s It holds %s past %s end date and still configured: %s. An expired credential no longer authenticates; left in place it is clutter that hides the credentials that matter.",
				reach, count(len(expired), "credential"), plural(len(expired), "its", "their"), e.listCreds(expired, at, false))
			e.addCred(a, "expired", secureauditv1.Severity_SEVERITY_LOW, "base MEDIUM; past its end date, it no longer authenticates (cleanup): -> LOW", detail, expired)
		}
		if len(expiring) > 0 {
			detail := fmt.Sprintf("%s It holds %s ending within the %d-day threshold: %s. Rotate before the end date; a pipeline that breaks on expiry tends to get a longer-lived secret in a hurry.",
				reach, count(len(expiring), "credential"), e.cfg.CredentialExpiryDays, e.listCreds(expiring, at, true))
			e.addCred(a, "expiring", secureauditv1.Severity_SEVERITY_LOW, "base MEDIUM; still valid, expiry is an availability risk rather than an exposure: -> LOW", detail, expiring)
		}
		if len(old) > 0 {
			detail := fmt.Sprintf("%s It holds %s created more than the %d-day rotation threshold before the audit: %s.",
				reach, count(len(old), "client secret"), e.cfg.SecretMaxAgeDays, e.listCreds(old, at, false))
			e.addCred(a, "old-secret", 0, "base MEDIUM; a client secret past the rotation age", detail, old)
		}
		if len(valid) > 0 && len(sp.GetFederatedCredentials()) > 0 {
			fed := make([]string, 0, len(sp.GetFederatedCredentials()))
			for _, fc := range sp.GetFederatedCredentials() {
				fed = append(fed, fmt.Sprintf("%s (issuer %s, subject %s)", fc.GetName(), fc.GetIssuer(), fc.GetSubject()))
			}
			detail := fmt.Sprintf("%s It trusts %d federated %s, %s, and still holds %s: %s. The secret or key is the weaker door the federation was meant to close: it works from anywhere, without the issuer.",
				reach, len(fed), plural(len(fed), "credential", "credentials"), strings.Join(fed, "; "), plural(len(valid), "a valid secret or certificate", "valid secrets or certificates"), e.listCreds(valid, at, false))
			e.addCred(a, "beside-federation", secureauditv1.Severity_SEVERITY_HIGH, "base MEDIUM; a long-lived credential beside a federated one defeats the federation: -> HIGH", detail, valid)
		}
	}
}

// addCred adds an ENTRA-013 finding of one case for the credentials cs.
func (e *evaluator) addCred(a *spAccess, kase string, sev secureauditv1.Severity, reason, detail string, cs []*secureauditv1.ApplicationCredential) {
	scope := clusterScope()
	var ref *secureauditv1.BindingRef
	if a.first != nil {
		ref = a.first.ref
		if !a.clusterWide {
			scope = a.first.scope()
		}
	}
	key := []string{kase, a.m.id()}
	for _, c := range cs {
		key = append(key, lower(c.GetKeyId()))
	}
	e.add(CredentialHygiene, sev, reason, memberRef(a.m), ref, scope, detail, deleteCreds(a.m.sp, cs), key...)
	// The report's action: remove what is expired or defeats the
	// federation, rotate what ends soon or is old; never revoke the
	// identity's access for its credential's hygiene.
	f := e.out[len(e.out)-1]
	f.CredentialFix = secureauditv1.CredentialFix_CREDENTIAL_FIX_ROTATE
	if kase == "expired" || kase == "beside-federation" {
		f.CredentialFix = secureauditv1.CredentialFix_CREDENTIAL_FIX_REMOVE
	}
	f.CredentialCommand = strings.Join(deletions(a.m.sp, cs), "; ")
}

// listCreds describes credentials: kind, display name, key ID and dates
// (absolute dates, so that the text does not change from day to day, except
// the days left of an expiring credential).
func (e *evaluator) listCreds(cs []*secureauditv1.ApplicationCredential, at time.Time, daysLeft bool) string {
	const maxCreds = 20
	parts := make([]string, 0, min(len(cs), maxCreds)+1)
	for i, c := range cs {
		if i == maxCreds {
			parts = append(parts, fmt.Sprintf("and %d more", len(cs)-maxCreds))
			break
		}
		kind := "client secret"
		if c.GetKind() == secureauditv1.CredentialKind_CREDENTIAL_KIND_CERTIFICATE {
			kind = "certificate"
		}
		if c.GetOnServicePrincipal() {
			kind += " of the service principal"
		}
		s := fmt.Sprintf("%s %q (key ID %s", kind, c.GetDisplayName(), cmp.Or(c.GetKeyId(), "unknown"))
		if t := c.GetStart(); t != nil {
			s += ", created " + t.AsTime().UTC().Format(time.DateOnly)
		}
		if t := c.GetEnd(); t != nil {
			s += ", ends " + t.AsTime().UTC().Format(time.DateOnly)
			if daysLeft {
				s += fmt.Sprintf(", %d days after the audit", int(t.AsTime().Sub(at)/day))
			}
		}
		parts = append(parts, s+")")
	}
	return strings.Join(parts, "; ")
}

// deleteCreds is the command that lists the credentials of sp's
// application (or of sp itself) and deletes each of cs.
func deleteCreds(sp *secureauditv1.DirectoryServicePrincipal, cs []*secureauditv1.ApplicationCredential) string {
	cmds := []string{}
	listed := map[bool]bool{}
	for _, c := range cs {
		if !listed[c.GetOnServicePrincipal()] {
			listed[c.GetOnServicePrincipal()] = true
			if c.GetOnServicePrincipal() {
				cmds = append(cmds, "az ad sp credential list --id "+sp.GetId())
			} else {
				cmds = append(cmds, "az ad app credential list --id "+sp.GetAppId())
			}
		}
	}
	return strings.Join(append(cmds, deletions(sp, cs)...), "; ")
}

// deletions are the commands that delete each of cs.
func deletions(sp *secureauditv1.DirectoryServicePrincipal, cs []*secureauditv1.ApplicationCredential) []string {
	cmds := make([]string, 0, len(cs))
	for _, c := range cs {
		key := cmp.Or(c.GetKeyId(), "<key ID from the list: "+c.GetDisplayName()+">")
		cmd := fmt.Sprintf("az ad app credential delete --id %s --key-id %s", sp.GetAppId(), key)
		if c.GetOnServicePrincipal() {
			cmd = fmt.Sprintf("az ad sp credential delete --id %s --key-id %s", sp.GetId(), key)
		}
		if c.GetKind() == secureauditv1.CredentialKind_CREDENTIAL_KIND_CERTIFICATE {
			cmd += " --cert"
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

// count is "1 thing" or "n things".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
