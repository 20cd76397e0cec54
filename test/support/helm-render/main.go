// helm-render renders a Helm chart the way `helm template` does, for tests on machines where no
// helm binary can be installed. It implements the subset of Helm's engine our chart uses:
// text/template + sprig + include/tpl/toYaml/fromYaml/toJson/required/fail/lookup, .Release,
// .Chart (Helm's capitalised keys), .Values (values.yaml deep-merged with override files, null
// deletes a key as in Helm), .Capabilities (APIVersions.Has, KubeVersion), .Files.Get, .Template.
//
// Build offline in GOPATH mode against Debian's packages:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o helm-render ./test/support/helm-render
//
// Usage: helm-render --chart DIR [--values FILE]... [--name N] [--namespace NS]
//
//	[--api-versions a/v1,b/v1] [--kube-version v1.30.0] [--include-crds] [--notes]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	yamlv2 "gopkg.in/yaml.v2"
	yaml "gopkg.in/yaml.v3"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// VersionSet mirrors chartutil.VersionSet so templates can call .Capabilities.APIVersions.Has.
type VersionSet []string

func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

type KubeVersion struct {
	Version    string
	Major      string
	Minor      string
	GitVersion string
}

func (k KubeVersion) String() string { return k.Version }

type Capabilities struct {
	APIVersions VersionSet
	KubeVersion KubeVersion
	HelmVersion map[string]string
}

// Files mirrors Helm's .Files for the methods our chart calls.
type Files map[string][]byte

func (f Files) Get(name string) string     { return string(f[name]) }
func (f Files) GetBytes(name string) []byte { return f[name] }

// Core API groups Helm reports even without a cluster (a subset of chartutil.DefaultVersionSet).
var defaultAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "policy/v1", "rbac.authorization.k8s.io/v1",
	"apiextensions.k8s.io/v1", "coordination.k8s.io/v1", "networking.k8s.io/v1",
	"admissionregistration.k8s.io/v1", "autoscaling/v2", "events.k8s.io/v1",
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "helm-render: "+strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
}

func run() error {
	var valueFiles multiFlag
	chartDir := flag.String("chart", "", "chart directory")
	name := flag.String("name", "release-name", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	apiVersions := flag.String("api-versions", "", "extra API versions (comma separated)")
	kubeVersion := flag.String("kube-version", "v1.30.0", "Kubernetes version")
	includeCRDs := flag.Bool("include-crds", false, "also emit the chart's crds/ directory")
	notes := flag.Bool("notes", false, "render templates/NOTES.txt instead of the manifests")
	flag.Var(&valueFiles, "values", "values file (YAML or JSON), repeatable")
	flag.Parse()
	if *chartDir == "" {
		return errors.New("--chart is required")
	}

	chartMeta, err := loadChart(*chartDir)
	if err != nil {
		return err
	}
	values, err := readYAMLMap(filepath.Join(*chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	for _, f := range valueFiles {
		override, err := readYAMLMap(f)
		if err != nil {
			return err
		}
		values = mergeValues(values, override)
	}

	apis := append([]string{}, defaultAPIVersions...)
	for _, a := range strings.Split(*apiVersions, ",") {
		if a = strings.TrimSpace(a); a != "" {
			apis = append(apis, a)
		}
	}
	kv := strings.TrimPrefix(*kubeVersion, "v")
	parts := strings.SplitN(kv, ".", 3)
	if len(parts) < 2 {
		return fmt.Errorf("--kube-version %q is not vMAJOR.MINOR[.PATCH]", *kubeVersion)
	}
	caps := Capabilities{
		APIVersions: VersionSet(apis),
		KubeVersion: KubeVersion{Version: "v" + kv, Major: parts[0], Minor: parts[1], GitVersion: "v" + kv},
		HelmVersion: map[string]string{"Version": "v3.15.0"},
	}
	files, err := loadFiles(*chartDir)
	if err != nil {
		return err
	}

	chartName, _ := chartMeta["Name"].(string)
	top := map[string]interface{}{
		"Values": values,
		"Chart":  chartMeta,
		"Release": map[string]interface{}{
			"Name": *name, "Namespace": *namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Capabilities": caps,
		"Files":        files,
	}

	tmplDir := filepath.Join(*chartDir, "templates")
	entries, err := os.ReadDir(tmplDir)
	if err != nil {
		return fmt.Errorf("reading %s: %v", tmplDir, err)
	}
	t := template.New("gotpl")
	t.Option("missingkey=zero")
	t.Funcs(funcMap(t))
	var rendered []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".tpl") || n == "NOTES.txt") {
			continue
		}
		src, err := os.ReadFile(filepath.Join(tmplDir, n))
		if err != nil {
			return err
		}
		full := path.Join(chartName, "templates", n)
		if _, err := t.New(full).Parse(string(src)); err != nil {
			return fmt.Errorf("parsing %s: %v", full, err)
		}
		if !strings.HasPrefix(n, "_") {
			rendered = append(rendered, full)
		}
	}
	sort.Strings(rendered)

	var out strings.Builder
	if *includeCRDs {
		crdDir := filepath.Join(*chartDir, "crds")
		crdEntries, _ := os.ReadDir(crdDir)
		for _, e := range crdEntries {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(crdDir, e.Name()))
			if err != nil {
				return err
			}
			fmt.Fprintf(&out, "---\n# Source: %s/crds/%s\n%s\n", chartName, e.Name(), strings.TrimRight(string(b), "\n"))
		}
	}
	for _, full := range rendered {
		isNotes := strings.HasSuffix(full, "/NOTES.txt")
		if isNotes != *notes {
			continue
		}
		data := copyTop(top)
		data["Template"] = map[string]interface{}{"Name": full, "BasePath": path.Join(chartName, "templates")}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, full, data); err != nil {
			return fmt.Errorf("rendering %s: %v", full, err)
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if isNotes {
			out.WriteString(text)
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", full, strings.TrimRight(strings.TrimLeft(text, "\n"), "\n"))
	}
	_, err = os.Stdout.WriteString(out.String())
	return err
}

func copyTop(top map[string]interface{}) map[string]interface{} {
	c := make(map[string]interface{}, len(top)+1)
	for k, v := range top {
		c[k] = v
	}
	return c
}

func funcMap(t *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	// Helm removes these: a chart must not read the renderer's environment.
	delete(f, "env")
	delete(f, "expandenv")
	includedNames := map[string]int{}
	f["include"] = func(name string, data interface{}) (string, error) {
		if includedNames[name] > 1000 {
			return "", fmt.Errorf("include %q: too deep (recursion?)", name)
		}
		includedNames[name]++
		defer func() { includedNames[name]-- }()
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := t.Clone()
		if err != nil {
			return "", err
		}
		nt, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: %v", err)
		}
		var buf bytes.Buffer
		if err := nt.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("tpl: %v", err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	f["toYaml"] = func(v interface{}) string {
		b, err := yamlv2.Marshal(v)
		if err != nil {
			return "" // Helm's toYaml swallows errors the same way
		}
		return strings.TrimSuffix(string(b), "\n")
	}
	f["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["fromYamlArray"] = func(s string) []interface{} {
		var a []interface{}
		if err := yaml.Unmarshal([]byte(s), &a); err != nil {
			return []interface{}{err.Error()}
		}
		return a
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	f["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	f["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	return f
}

func loadChart(dir string) (map[string]interface{}, error) {
	raw, err := readYAMLMap(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	// Helm exposes chart.Metadata with Go field names; map the YAML keys onto them.
	special := map[string]string{"apiVersion": "APIVersion", "appVersion": "AppVersion", "kubeVersion": "KubeVersion"}
	meta := map[string]interface{}{}
	for k, v := range raw {
		key, ok := special[k]
		if !ok {
			key = strings.ToUpper(k[:1]) + k[1:]
		}
		meta[key] = v
	}
	if _, ok := meta["Name"].(string); !ok {
		return nil, fmt.Errorf("%s/Chart.yaml has no name", dir)
	}
	return meta, nil
}

func loadFiles(dir string) (Files, error) {
	files := Files{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "templates" {
				return filepath.SkipDir
			}
			return nil
		}
		if rel == "Chart.yaml" || rel == "values.yaml" || rel == "values.schema.json" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[rel] = b
		return nil
	})
	return files, err
}

func readYAMLMap(file string) (map[string]interface{}, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %v", file, err)
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parsing %s: %v", file, err)
	}
	return m, nil
}

// mergeValues deep-merges override onto base as Helm's coalesce does: maps merge key by key,
// anything else replaces, and an explicit null removes the key.
func mergeValues(base, override map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range override {
		if v == nil {
			delete(out, k)
			continue
		}
		if om, ok := v.(map[string]interface{}); ok {
			if bm, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeValues(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}
