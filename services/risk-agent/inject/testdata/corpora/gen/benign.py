# Benign strings from published manifests, Helm charts and an operator bundle: the strings the
# scanner reads (name, "key=value" labels, "key: value" annotations) plus a last-applied-configuration.
# Usage: python3 gen/benign.py <repository root> <helm-charts clone> <jaeger-operator clone> <out dir>.
import yaml, json, glob, subprocess, os, collections, sys
OUT = sys.argv[4]  # this directory
WT = sys.argv[1]  # the repository root

def gitshow(repo, path):
    return subprocess.run(['git', '-C', repo, 'show', 'HEAD:' + path], check=True, capture_output=True).stdout.decode('utf-8')
def commit(repo):
    return subprocess.run(['git', '-C', repo, 'rev-parse', 'HEAD'], check=True, capture_output=True, text=True).stdout.strip()

def meta_strings(obj, rows, tag):
    m = obj.get('metadata') or {}
    if m.get('name'):
        rows.append((tag + ':name', m['name']))
    for k, v in sorted((m.get('labels') or {}).items()):
        rows.append((tag + ':label', f'{k}={v}'))
    for k, v in sorted((m.get('annotations') or {}).items()):
        rows.append((tag + ':annotation', f'{k}: {v}'))

def last_applied(obj):
    # what `kubectl apply` stores: the applied manifest as compact JSON, annotation included with {} when none
    o = json.loads(json.dumps(obj))
    o.setdefault('metadata', {}).setdefault('annotations', {})
    o['metadata']['annotations'].pop('kubectl.kubernetes.io/last-applied-configuration', None)
    return 'kubectl.kubernetes.io/last-applied-configuration: ' + json.dumps(o, separators=(',', ':'), sort_keys=True) + '\n'

def write(name, header, rows):
    seen = set(); n = 0
    with open(f'{OUT}/{name}', 'w') as f:
        f.write(header)
        for style, text in rows:
            if not text or text in seen:
                continue
            seen.add(text); n += 1
            f.write(style + '\t' + json.dumps(text, ensure_ascii=True) + '\n')
    print(name, n, collections.Counter(s for s, t in rows))

rows = []
for path in sorted(glob.glob(WT + '/testdata/realworld/*/*.yaml')):
    proj = path.split('/')[-2]
    for doc in yaml.safe_load_all(open(path)):
        if not doc:
            continue
        items = doc.get('items') if doc.get('kind', '').endswith('List') else [doc]
        for i, obj in enumerate(items or []):
            meta_strings(obj, rows, 'manifest')
            if obj.get('kind') in ('ClusterRoleBinding', 'RoleBinding', 'ServiceAccount', 'Namespace') or i % 3 == 0:
                rows.append(('manifest:last-applied', last_applied(obj)))
write('benign-manifests.txt', """# Benign corpus: the strings the scanner reads from the published manifests already in the
# repository, testdata/realworld/*/*.yaml (sources, commits and licences in testdata/realworld/SOURCES.md):
# every object's name, each label as "key=value" and each annotation as "key: value" (as Inspect joins
# them), and for every binding, ServiceAccount and Namespace and every third other object the
# kubectl.kubernetes.io/last-applied-configuration annotation `kubectl apply` would store for it (the
# object as compact JSON, trailing newline, as kubectl writes it). Style is kind:field.
""", rows)

H = sys.argv[2]  # prometheus-community/helm-charts
hc = commit(H)
rows = []
charts = sorted(p for p in subprocess.run(['git', '-C', H, 'ls-tree', '-r', '--name-only', 'HEAD'], capture_output=True, text=True).stdout.split() if p.endswith('/Chart.yaml'))
for p in charts:
    c = yaml.safe_load(gitshow(H, p))
    rows.append(('helm:name', c['name']))
    if c.get('description'):
        rows.append(('helm:description', c['description']))
    for k, v in sorted((c.get('annotations') or {}).items()):
        rows.append(('helm:annotation', f'{k}: {v}'))
    rows.append(('helm:label', f"helm.sh/chart={c['name']}-{c['version']}"))
    if c.get('appVersion'):
        rows.append(('helm:label', f"app.kubernetes.io/version={c['appVersion']}"))
    for kw in c.get('keywords') or []:
        rows.append(('helm:keyword', str(kw)))
write('benign-helm.txt', f"""# Benign corpus: prometheus-community/helm-charts (https://github.com/prometheus-community/helm-charts),
# licence Apache-2.0, commit {hc}. For every charts/*/Chart.yaml: the chart name, its description,
# each annotation as "key: value" (artifacthub.io/changes, links, license, operator and the rest,
# multi-line values verbatim), the labels its templates set from it (helm.sh/chart=<name>-<version>,
# app.kubernetes.io/version=<appVersion>) and its keywords.
""", rows)

O = sys.argv[3]  # jaegertracing/jaeger-operator
oc = commit(O)
rows = []
csv = yaml.safe_load(gitshow(O, 'bundle/manifests/jaeger-operator.clusterserviceversion.yaml'))
meta_strings(csv, rows, 'olm')
rows.append(('olm:description', csv['spec']['description']))
for crd in csv['spec'].get('customresourcedefinitions', {}).get('owned', []):
    for k in ('description', 'displayName'):
        if crd.get(k):
            rows.append(('olm:crd-' + k, crd[k]))
for p in subprocess.run(['git', '-C', O, 'ls-tree', '-r', '--name-only', 'HEAD', 'bundle/manifests'], capture_output=True, text=True).stdout.split():
    if p.endswith('.yaml') and 'clusterserviceversion' not in p:
        for doc in yaml.safe_load_all(gitshow(O, p)):
            if doc:
                meta_strings(doc, rows, 'olm')
write('benign-olm.txt', f"""# Benign corpus: the Jaeger operator's OLM bundle, jaegertracing/jaeger-operator
# (https://github.com/jaegertracing/jaeger-operator), licence Apache-2.0, commit {oc}:
# bundle/manifests/jaeger-operator.clusterserviceversion.yaml, its name, labels and annotations
# (alm-examples JSON, description, capabilities, categories, containerImage, ...) as the scanner
# reads them, its spec.description (markdown) and the owned CRDs' descriptions and display names;
# and the name, labels and annotations of every other object in bundle/manifests.
""", rows)
