// Package platform is the shared ground of every SecureAudit service: one way
// to build a gRPC server and client (mTLS with SPIFFE identities, per-method
// authorization from scope manifests, protovalidate on both ends, telemetry,
// recovery), the development PKI, and the process lifecycle. It never imports
// a service.
package platform
