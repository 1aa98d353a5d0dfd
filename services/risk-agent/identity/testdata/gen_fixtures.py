#!/usr/bin/env python3
"""Writes testdata/rules/<ID>/{snapshot,directory,rbac}.json: one small
fixture per identity rule, with positives and near misses. Run from
services/risk-agent/identity; then `go test ./identity -update` writes want.json."""
import json, os

def uid(n): return "%08x-0000-4000-8000-%012x" % (n, n)

HDR = {"cluster": "fixture", "source": "SNAPSHOT_SOURCE_FILE", "collectedAt": "2026-06-01T00:00:00Z"}

def crb(name, role, *subs): return {"meta": {"name": name}, "roleRef": {"kind": "ROLE_KIND_CLUSTER_ROLE", "name": role}, "subjects": list(subs)}
def rb(ns, name, role, *subs): return {"meta": {"name": name, "namespace": ns}, "roleRef": {"kind": "ROLE_KIND_CLUSTER_ROLE", "name": role}, "subjects": list(subs)}
def user(n): return {"kind": "SUBJECT_KIND_USER", "name": n}
def group(n): return {"kind": "SUBJECT_KIND_GROUP", "name": n}
def sa(ns, n): return {"kind": "SUBJECT_KIND_SERVICE_ACCOUNT", "name": n, "namespace": ns}
def duser(n, upn, name, guest=False, enabled=True, last=None):
    u = {"id": uid(n), "userPrincipalName": upn, "displayName": name, "userType": "USER_TYPE_GUEST" if guest else "USER_TYPE_MEMBER", "accountEnabled": enabled}
    if last: u["lastSignIn"] = last
    return u
def dgroup(n, name, members=(), owners=()): return {"id": uid(n), "displayName": name, "memberIds": [uid(m) for m in members], "ownerIds": [uid(o) for o in owners]}
def dsp(n, app, name, typ="Application", secrets=0, fed=()):
    s = {"id": uid(n), "appId": uid(app), "displayName": name, "servicePrincipalType": typ}
    if secrets: s["passwordCredentials"] = secrets
    if fed: s["federatedCredentials"] = [{"name": "f%d" % i, "issuer": i_, "subject": s_} for i, (i_, s_) in enumerate(fed)]
    return s
def saobj(ns, n, cid=None, labels=None):
    m = {"name": n, "namespace": ns}
    if cid: m["annotations"] = {"azure.workload.identity/client-id": cid}
    if labels: m["labels"] = labels
    return {"meta": m}
def finding(rule, sub, crbname=None, ns=None, rbname=None):
    b = {"kind": "BINDING_KIND_CLUSTER_ROLE_BINDING", "name": crbname} if crbname else {"kind": "BINDING_KIND_ROLE_BINDING", "name": rbname, "namespace": ns}
    scope = {"level": "SCOPE_LEVEL_CLUSTER"} if crbname else {"level": "SCOPE_LEVEL_NAMESPACE", "namespace": ns}
    s = {"kind": sub["kind"], "name": sub["name"]}
    if sub.get("namespace"): s["namespace"] = sub["namespace"]
    return {"id": "0000000000000000", "ruleId": rule, "title": "t", "severity": "SEVERITY_CRITICAL", "severityReason": "r", "subject": s, "binding": b, "scope": scope, "remediation": "x"}

F = {}
# E1: group binding to a deleted group; near misses: a group that exists, a group in errors only, a user unresolved.
F["ENTRA-001"] = dict(
    snap={"roleBindings": [rb("a", "gone", "view", group(uid(1))), rb("a", "here", "view", group(uid(2))), rb("a", "erred", "view", group(uid(3))), rb("a", "u", "view", user("nobody@example.com"))],
          "clusterRoleBindings": [crb("gone-too", "view", group(uid(4)), user("x@example.com"))]},
    dir={"groups": [dgroup(2, "present")], "unresolved": [{"kind": "PRINCIPAL_KIND_GROUP", "name": uid(1)}, {"kind": "PRINCIPAL_KIND_GROUP", "name": uid(4).upper()}, {"kind": "PRINCIPAL_KIND_USER", "name": "nobody@example.com"}],
         "errors": [{"lookup": "group " + uid(3), "message": "429"}], "partial": True})
# E2: guests direct (namespace, cluster), through nested groups; near miss: member.
F["ENTRA-002"] = dict(
    snap={"roleBindings": [rb("a", "direct", "view", user("guest_a.com#EXT#@t.onmicrosoft.com")), rb("a", "via-group", "edit", group(uid(10)))],
          "clusterRoleBindings": [crb("cw", "view", user(uid(2)))]},
    dir={"users": [duser(1, "guest_a.com#EXT#@t.onmicrosoft.com", "Guest A", guest=True), duser(2, "guest_b.com#EXT#@t.onmicrosoft.com", "Guest B", guest=True), duser(3, "m@t.onmicrosoft.com", "Member M")],
         "groups": [dgroup(10, "outer", [11, 3]), dgroup(11, "inner", [1, 2])]})
# E3: disabled direct and nested; near miss: enabled.
F["ENTRA-003"] = dict(
    snap={"roleBindings": [rb("a", "d", "view", user("Old@t.onmicrosoft.com")), rb("b", "g", "edit", group(uid(10)))]},
    dir={"users": [duser(1, "old@t.onmicrosoft.com", "Old", enabled=False), duser(2, "new@t.onmicrosoft.com", "New"), duser(3, "gone@t.onmicrosoft.com", "Gone", enabled=False)],
         "groups": [dgroup(10, "g", [11, 2]), dgroup(11, "g-inner", [3, 10])]})
# E4: SA whose client id is unresolved; near misses: resolved, no annotation, unresolved only as a user.
F["ENTRA-004"] = dict(
    snap={"serviceAccounts": [saobj("ci", "ghost", uid(100)), saobj("ci", "real", uid(101)), saobj("ci", "plain"), saobj("ci", "other", uid(102))],
          "workloads": [{"meta": {"name": "runner", "namespace": "ci"}, "kind": "Pod", "serviceAccount": "ghost"}]},
    dir={"servicePrincipals": [dsp(1, 101, "id-real", "ManagedIdentity")], "unresolved": [{"kind": "PRINCIPAL_KIND_CLIENT_ID", "name": uid(100)}, {"kind": "PRINCIPAL_KIND_USER", "name": uid(102)}]})
# E5: CI/CD identities with cluster-admin / escalation; near misses: CI name without admin finding, admin without CI evidence, infrastructure.
F["ENTRA-005"] = dict(
    snap={"serviceAccounts": [saobj("ci", "github-deployer"), saobj("apps", "runner", uid(200)), saobj("apps", "web")],
          "clusterRoleBindings": [crb("gh", "cluster-admin", sa("ci", "github-deployer")), crb("wi", "cluster-admin", sa("apps", "runner")),
                                  crb("grp", "cluster-admin", group(uid(10))), crb("web", "cluster-admin", sa("apps", "web"))],
          "roleBindings": [rb("ci", "esc", "impersonator", sa("ci", "github-deployer"))]},
    dir={"servicePrincipals": [dsp(1, 200, "id-apps-runner", "ManagedIdentity", fed=[("https://token.actions.githubusercontent.com", "repo:org/app:ref:refs/heads/main")]),
                               dsp(2, 201, "sp-jenkins-prod", secrets=1), dsp(3, 202, "sp-reporting")],
         "groups": [dgroup(10, "ops", [2, 3])]},
    rbac=[finding("RBAC-001", sa("ci", "github-deployer"), crbname="gh"), finding("RBAC-001", sa("apps", "runner"), crbname="wi"),
          finding("RBAC-001", group(uid(10)), crbname="grp"), finding("RBAC-001", sa("apps", "web"), crbname="web"),
          finding("RBAC-009", sa("ci", "github-deployer"), ns="ci", rbname="esc"), finding("RBAC-004", sa("ci", "github-deployer"), crbname="gh")])
# E6: pods with aadpodidbinding; near miss: other labels.
F["ENTRA-006"] = dict(
    snap={"workloads": [{"meta": {"name": "etl", "namespace": "data", "labels": {"aadpodidbinding": "etl-id"}}, "kind": "Pod", "serviceAccount": "default"},
                        {"meta": {"name": "web", "namespace": "web", "labels": {"app": "web"}}, "kind": "Pod", "serviceAccount": "web"}]},
    dir=None)
# E7: person through two bound groups (one nested); near miss: two bindings of one group, group + direct binding.
F["ENTRA-007"] = dict(
    snap={"roleBindings": [rb("a", "g1", "view", group(uid(10))), rb("b", "g2", "view", group(uid(11))), rb("c", "g3a", "view", group(uid(12))), rb("d", "g3b", "edit", group(uid(12))),
                           rb("e", "direct", "view", user("solo@t.onmicrosoft.com"))]},
    dir={"users": [duser(1, "both@t.onmicrosoft.com", "Both"), duser(2, "once@t.onmicrosoft.com", "Once"), duser(3, "solo@t.onmicrosoft.com", "Solo")],
         "groups": [dgroup(10, "g1", [1]), dgroup(11, "g2", [13]), dgroup(13, "g2-nested", [1]), dgroup(12, "g3", [2, 3])]})
# E8: second path through Azure RBAC: user (non-admin role), group with member's admin role, group's own role; near miss: no assignment.
RG = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-aks"
F["ENTRA-008"] = dict(
    snap={"roleBindings": [rb("a", "u", "view", user("reader@t.onmicrosoft.com")), rb("a", "none", "view", user("plain@t.onmicrosoft.com"))],
          "clusterRoleBindings": [crb("ops", "cluster-admin", group(uid(10))), crb("devs", "view", group(uid(11)))]},
    dir={"users": [duser(1, "reader@t.onmicrosoft.com", "Reader"), duser(2, "plain@t.onmicrosoft.com", "Plain"), duser(3, "boss@t.onmicrosoft.com", "Boss")],
         "groups": [dgroup(10, "ops", [3]), dgroup(11, "devs", [2])],
         "roleAssignments": [
             {"id": RG + "/providers/Microsoft.Authorization/roleAssignments/a1", "principalId": uid(1), "principalType": "User", "roleName": "Azure Kubernetes Service Cluster User Role", "scope": RG + "/providers/Microsoft.ContainerService/managedClusters/aks"},
             {"id": RG + "/providers/Microsoft.Authorization/roleAssignments/a2", "principalId": uid(3), "principalType": "User", "roleName": "Owner", "scope": RG},
             {"id": RG + "/providers/Microsoft.Authorization/roleAssignments/a3", "principalId": uid(11), "principalType": "Group", "roleName": "Azure Kubernetes Service RBAC Reader", "scope": RG}]})
# E9: CI/CD SP with secrets and no federation; near misses: federated CI SP, non-CI SP with secret.
F["ENTRA-009"] = dict(
    snap={"clusterRoleBindings": [crb("ops", "edit", group(uid(10)))], "roleBindings": [rb("ci", "direct", "edit", user(uid(2)))]},
    dir={"servicePrincipals": [dsp(1, 101, "sp-azdo-deploy", secrets=2), dsp(2, 102, "sp-github-actions", secrets=1), dsp(3, 103, "sp-gitlab-ci", secrets=1, fed=[("https://gitlab.com", "project_path:org/app:ref_type:branch:ref:main")]), dsp(4, 104, "sp-reporting", secrets=1)],
         "groups": [dgroup(10, "ops", [1, 3, 4])]})
# Stale: last sign-in before the threshold; near misses: recent, unknown.
F["ENTRA-010"] = dict(
    snap={"roleBindings": [rb("a", "g", "view", group(uid(10))), rb("a", "d", "view", user("old@t.onmicrosoft.com"))]},
    dir={"users": [duser(1, "old@t.onmicrosoft.com", "Old", last="2025-12-01T00:00:00Z"), duser(2, "recent@t.onmicrosoft.com", "Recent", last="2026-05-01T00:00:00Z"), duser(3, "never@t.onmicrosoft.com", "Never"),
                   duser(4, "older@t.onmicrosoft.com", "Older", last="2024-01-01T00:00:00Z")],
         "groups": [dgroup(10, "g", [2, 3, 4])]})
# Owners: guest owner, disabled owner of a nested group; near miss: member owner.
F["ENTRA-011"] = dict(
    snap={"roleBindings": [rb("a", "g1", "view", group(uid(10))), rb("a", "g2", "view", group(uid(11))), rb("a", "g3", "view", group(uid(12)))]},
    dir={"users": [duser(1, "guest_x#EXT#@t.onmicrosoft.com", "Guest X", guest=True), duser(2, "off@t.onmicrosoft.com", "Off", enabled=False), duser(3, "ok@t.onmicrosoft.com", "OK")],
         "groups": [dgroup(10, "g1", [3], [1]), dgroup(11, "g2", [13], [3]), dgroup(13, "g2-inner", [3], [2]), dgroup(12, "g3", [3], [3])]})
# People: every group binding, nested members, owners; near misses: user binding, unresolved group.
F["ENTRA-012"] = dict(
    snap={"roleBindings": [rb("a", "g", "view", group(uid(10))), rb("a", "u", "view", user("a@t.onmicrosoft.com")), rb("a", "gone", "view", group(uid(99)))],
          "clusterRoleBindings": [crb("cw", "view", group(uid(11)))]},
    dir={"users": [duser(1, "a@t.onmicrosoft.com", "A"), duser(2, "b_x.com#EXT#@t.onmicrosoft.com", "B", guest=True, enabled=False)],
         "servicePrincipals": [dsp(3, 103, "sp-bot")],
         "groups": [dgroup(10, "g", [1, 11, 3], [1]), dgroup(11, "inner", [2, 10], [2])],
         "unresolved": [{"kind": "PRINCIPAL_KIND_GROUP", "name": uid(99)}]})
# Credential hygiene (collected 2026-06-01): expired and still configured
# (namespace binding), expiring in 19 days beside a near miss in 39 (through
# a group, cluster-wide), a 243-day-old secret beside a 168-day-old one and
# an old certificate (near misses), a secret beside a federated credential
# (workload identity ServiceAccount), an expired secret beside a federated
# credential reached through a standing Azure role assignment only (expired,
# not beside federation); near misses: a managed identity's expiring
# certificate, an application not reaching the cluster, one reaching it
# through an eligible (PIM) assignment only.
def cred(kind, key, name, start, end, on_sp=False):
    c = {"kind": "CREDENTIAL_KIND_" + kind, "displayName": name, "start": start, "end": end}
    if key: c["keyId"] = uid(key)
    if on_sp: c["onServicePrincipal"] = True
    return c
def dspc(n, app, name, creds, typ="Application", fed=()):
    s = dsp(n, app, name, typ, fed=fed)
    s["credentials"] = creds
    sec = sum(1 for c in creds if c["kind"].endswith("SECRET"))
    if sec: s["passwordCredentials"] = sec
    if len(creds) - sec: s["certificateCredentials"] = len(creds) - sec
    return s
GH = ("https://token.actions.githubusercontent.com", "repo:org/app:environment:prod")
F["ENTRA-013"] = dict(
    snap={"roleBindings": [rb("a", "expired", "view", user(uid(1)))],
          "clusterRoleBindings": [crb("ops", "edit", group(uid(10))), crb("old", "view", user(uid(3))), crb("wi", "edit", sa("ci", "deployer")),
                                  crb("mi", "view", user(uid(6))), crb("nobody-here", "view", user("x@t.onmicrosoft.com"))],
          "serviceAccounts": [saobj("ci", "deployer", uid(104))]},
    dir={"servicePrincipals": [
            dspc(1, 101, "app-expired", [cred("SECRET", 1001, "old one", "2026-01-01T00:00:00Z", "2026-05-01T00:00:00Z"),
                                         cred("CERTIFICATE", None, "CN=no key id", "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z")]),
            dspc(2, 102, "app-expiring", [cred("CERTIFICATE", 2001, "CN=soon", "2026-01-01T00:00:00Z", "2026-06-20T00:00:00Z"),
                                          cred("CERTIFICATE", 2002, "CN=later", "2026-01-01T00:00:00Z", "2026-07-10T00:00:00Z", on_sp=True)]),
            dspc(3, 103, "app-old-secret", [cred("SECRET", 3001, "2025", "2025-10-01T00:00:00Z", "2027-10-01T00:00:00Z"),
                                            cred("SECRET", 3002, "2025-12", "2025-12-15T00:00:00Z", "2027-12-15T00:00:00Z"),
                                            cred("CERTIFICATE", 3003, "CN=old", "2024-01-01T00:00:00Z", "2028-01-01T00:00:00Z")]),
            dspc(4, 104, "app-deployer", [cred("SECRET", 4001, "fallback", "2026-05-01T00:00:00Z", "2027-05-01T00:00:00Z")], fed=[GH]),
            dspc(5, 105, "app-azure-only", [cred("SECRET", 5001, "gone", "2025-11-01T00:00:00Z", "2026-02-01T00:00:00Z")], fed=[GH]),
            dspc(6, 106, "id-managed", [cred("CERTIFICATE", 6001, "CN=azure", "2026-01-01T00:00:00Z", "2026-06-10T00:00:00Z")], typ="ManagedIdentity"),
            dspc(7, 107, "app-unbound", [cred("SECRET", 7001, "x", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z")]),
            dspc(8, 108, "app-eligible", [cred("SECRET", 8001, "y", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z")])],
         "groups": [dgroup(10, "ops", [2])],
         "roleAssignments": [
             {"id": RG + "/providers/Microsoft.Authorization/roleAssignments/c1", "principalId": uid(5), "principalType": "ServicePrincipal", "roleName": "Azure Kubernetes Service Cluster User Role", "scope": RG + "/providers/Microsoft.ContainerService/managedClusters/aks"},
             {"id": RG + "/providers/Microsoft.Authorization/roleAssignments/c2", "principalId": uid(8), "principalType": "ServicePrincipal", "roleName": "Contributor", "scope": RG, "eligible": True}]})

for rid, f in F.items():
    d = os.path.join("testdata", "rules", rid)
    os.makedirs(d, exist_ok=True)
    snap = dict(f["snap"]); snap["header"] = dict(HDR, origin=rid)
    json.dump(snap, open(os.path.join(d, "snapshot.json"), "w"), indent=2)
    if f.get("dir") is not None:
        json.dump(f["dir"], open(os.path.join(d, "directory.json"), "w"), indent=2)
    if f.get("rbac"):
        json.dump({"findings": f["rbac"]}, open(os.path.join(d, "rbac.json"), "w"), indent=2)
