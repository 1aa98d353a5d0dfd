package registry

// controlTitles are the titles of the controls rules map to, so that a
// reader needs neither the CIS Kubernetes Benchmark (section 5.1) nor the
// SOC 2 trust services criteria open. A test checks that every control of
// every rule has one, and TestCISTitles that each CIS title is the
// benchmark's own (CIS Kubernetes v1.10 and CIS AKS v1.8.0, as
// aquasecurity/kube-bench transcribes them: testdata/cis-titles.txt).
var controlTitles = map[string]string{
	"CIS-5.1.1":     "Ensure that the cluster-admin role is only used where required",
	"CIS-5.1.2":     "Minimize access to secrets",
	"CIS-5.1.3":     "Minimize wildcard use in Roles and ClusterRoles",
	"CIS-5.1.4":     "Minimize access to create pods",
	"CIS-5.1.5":     "Ensure that default service accounts are not actively used",
	"CIS-5.1.6":     "Ensure that Service Account Tokens are only mounted where necessary",
	"CIS-5.1.7":     "Avoid use of system:masters group",
	"CIS-5.1.8":     "Limit use of the Bind, Impersonate and Escalate permissions in the Kubernetes cluster",
	"CIS-5.1.9":     "Minimize access to create persistent volumes",
	"CIS-5.1.10":    "Minimize access to the proxy sub-resource of nodes",
	"CIS-5.1.11":    "Minimize access to the approval sub-resource of certificatesigningrequests objects",
	"CIS-5.1.12":    "Minimize access to webhook configuration objects",
	"CIS-5.1.13":    "Minimize access to the service account token creation",
	"CIS-AKS-5.4.1": "Restrict Access to the Control Plane Endpoint",
	"CIS-AKS-5.4.2": "Ensure clusters are created with Private Endpoint Enabled and Public Access Disabled",
	"CIS-AKS-5.5.1": "Manage Kubernetes RBAC users with Azure AD",
	"CIS-AKS-5.5.2": "Use Azure RBAC for Kubernetes Authorization",
	"SOC2-CC6.6":    "Logical access security measures against threats from outside the system boundaries",
	"SOC2-CC6.1":    "Logical access security over protected information assets",
	"SOC2-CC6.2":    "Access is granted on authorization and removed when no longer needed",
	"SOC2-CC6.3":    "Access is role-based, least privilege, with segregation of duties",
	"SOC2-CC6.8":    "Unauthorized or malicious software is prevented or detected",
	"SOC2-CC7.2":    "Anomalies are monitored and evaluated",
}
