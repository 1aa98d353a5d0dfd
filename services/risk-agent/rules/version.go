package rules

import (
	"strconv"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// DefaultServerVersion is the Kubernetes version whose authorizer semantics
// apply when a snapshot names none (no discovery, no --server-version, no
// Node objects): the version of the captured bootstrap policy. Reports say
// when it was assumed.
const DefaultServerVersion = "v1.37.0"

// streamingCreateMinor is the first Kubernetes 1.x minor version whose API
// server authorizes the websocket upgrade of pods/exec, pods/attach and
// pods/portforward as create (AuthorizePodWebsocketUpgradeCreatePermission,
// beta and on by default in 1.35; kubernetes/kubernetes#134577, KEP-4006).
// Before it, a websocket connection is a GET and get on the subresource was
// enough to exec, attach or port-forward.
const streamingCreateMinor = 35

// Semantics returns the server version whose authorizer semantics the rules
// apply to a snapshot with header h, and where it came from: the header's
// version when it parses as a Kubernetes version, else DefaultServerVersion.
func Semantics(h *secureauditv1.SnapshotHeader) *secureauditv1.AuthorizerSemantics {
	v, src := h.GetServerVersion(), h.GetServerVersionSource()
	major, minor, ok := ParseVersion(v)
	if !ok {
		v, src = DefaultServerVersion, secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_DEFAULT
		major, minor, _ = ParseVersion(v)
	}
	if src == secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_UNSPECIFIED {
		// A header written before the source was recorded: a live
		// collection always asked discovery.
		src = secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_FLAG
		if h.GetSource() == secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE {
			src = secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_DISCOVERY
		}
	}
	return &secureauditv1.AuthorizerSemantics{
		ServerVersion:        v,
		Source:               src,
		StreamingNeedsCreate: major > 1 || major == 1 && minor >= streamingCreateMinor,
	}
}

// ParseVersion reads the major and minor version of a Kubernetes version
// string: "v1.34.2", "1.34", "v1.30.1-gke.1329003", "v1.29.3+k3s1".
func ParseVersion(v string) (major, minor int, ok bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	maj, rest, found := strings.Cut(v, ".")
	if !found {
		return 0, 0, false
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end == 0 {
		return 0, 0, false
	}
	if end > 0 {
		if rest[end] != '.' && rest[end] != '-' && rest[end] != '+' {
			return 0, 0, false
		}
		rest = rest[:end]
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(rest)
	if err1 != nil || err2 != nil || a < 1 || a > 99 || b > 999 {
		return 0, 0, false
	}
	return a, b, true
}
