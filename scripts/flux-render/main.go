// flux-render renders a ResourceSet's resourcesTemplate against real ExternalService
// responses the way Flux Operator does, so scripts/check-flux-examples.sh can prove the
// examples in examples/flux/ work before a cluster sees them.
//
// It follows flux-operator at 17c6aeaddd8dacd5fbd4dd9e1bfe23a0a59df1fb:
//   - internal/controller/resourcesetinputprovider_controller.go, callExternalServiceProvider:
//     the body is parsed with encoding/json, every input needs a unique string "id", the list
//     is cut to filter.limit, and each top-level value is stored as JSON;
//   - api/v1 ResourceSetInputProvider.GetInputs and internal/inputs: the stored values are
//     read back with apimachinery's json (whole numbers become int64, others float64), each
//     input gets a "provider" key, and the default Flatten strategy concatenates providers
//     sorted by kind, namespace and name;
//   - internal/controller/resourceset_controller.go: providers with no inputs at all give an
//     empty set (Flux deletes what it made) without running the template;
//   - internal/builder/resourceset.go, BuildResourcesFromYAML: text/template with "<<" ">>",
//     slim-sprig's hermetic functions, slugify, toYaml and mustToYaml, `inputs` as a function,
//     missingkey=error, executed once per input; the output is split into YAML documents as
//     apimachinery's YAMLReader does, and fluxcd/pkg/ssa's ReadObjects keeps only objects with
//     apiVersion, kind and name; objects annotated fluxcd.controlplane.io/reconcile: disabled
//     are left out and duplicates (same group, kind, namespace, name) keep the first.
//
// Input on stdin, one JSON object:
//
//	{"template": "...", "providers": [{"apiVersion": "fluxcd.controlplane.io/v1",
//	  "kind": "ResourceSetInputProvider", "name": "...", "namespace": "...", "limit": 100,
//	  "body": "<the raw HTTP response body>"}]}
//
// Output on stdout: {"inputs": N, "objects": [...], "dropped": [...], "duplicates": [...]},
// where "dropped" lists documents Flux would silently ignore (no apiVersion, kind or name).
// Any error Flux would report (a missing key, bad YAML, a bad response) exits 1 with it.
//
// Build offline in GOPATH mode with Debian's packages (see scripts/check-flux-examples.sh):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o flux-render ./scripts/flux-render
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type provider struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
	Limit      int    `json:"limit"`
	Body       string `json:"body"`
}

type request struct {
	Template  string     `json:"template"`
	Providers []provider `json:"providers"`
}

type result struct {
	Inputs     int              `json:"inputs"`
	Objects    []map[string]any `json:"objects"`
	Dropped    []string         `json:"dropped"`
	Duplicates []string         `json:"duplicates"`
}

func main() {
	var req request
	dec := json.NewDecoder(os.Stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fail("reading the request: %v", err)
	}
	inputs, err := combine(req.Providers)
	if err != nil {
		fail("%v", err)
	}
	res := result{Inputs: len(inputs), Objects: []map[string]any{}, Dropped: []string{}, Duplicates: []string{}}
	// As the ResourceSet controller: providers that export nothing mean an empty set.
	if len(inputs) > 0 {
		seen := map[string]bool{}
		for i, input := range inputs {
			objects, dropped, err := render(req.Template, input)
			if err != nil {
				fail("input %d (id %v): %v", i, input["id"], err)
			}
			res.Dropped = append(res.Dropped, dropped...)
			for _, object := range objects {
				if annotation(object, "fluxcd.controlplane.io/reconcile") == "disabled" {
					continue
				}
				key := objectKey(object)
				if seen[key] {
					res.Duplicates = append(res.Duplicates, key)
					continue
				}
				seen[key] = true
				res.Objects = append(res.Objects, object)
			}
		}
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(res); err != nil {
		fail("writing the result: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "flux-render: "+format+"\n", args...)
	os.Exit(1)
}

// combine turns each provider's response into the inputs a ResourceSet sees (Flatten).
func combine(providers []provider) ([]map[string]any, error) {
	sort.SliceStable(providers, func(i, j int) bool {
		a, b := providers[i], providers[j]
		if ga, gb := gvk(a), gvk(b); ga != gb {
			return ga < gb
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	var all []map[string]any
	for _, p := range providers {
		inputs, err := exportedInputs(p)
		if err != nil {
			return nil, fmt.Errorf("provider %s/%s: %w", p.Namespace, p.Name, err)
		}
		for _, input := range inputs {
			input["provider"] = map[string]any{
				"apiVersion": p.APIVersion, "kind": p.Kind, "name": p.Name, "namespace": p.Namespace,
			}
		}
		all = append(all, inputs...)
	}
	return all, nil
}

// gvk is how apimachinery prints a GroupVersionKind, the providers' first sort key.
func gvk(p provider) string {
	group, version := "", p.APIVersion
	if i := strings.Index(p.APIVersion, "/"); i >= 0 {
		group, version = p.APIVersion[:i], p.APIVersion[i+1:]
	}
	return group + "/" + version + ", Kind=" + p.Kind
}

// exportedInputs checks a response as the ExternalService provider does and returns its
// inputs as the ResourceSet reads them back from the provider's status.
func exportedInputs(p provider) ([]map[string]any, error) {
	var response struct {
		Inputs []map[string]any `json:"inputs"`
	}
	if err := json.Unmarshal([]byte(p.Body), &response); err != nil {
		return nil, fmt.Errorf("failed to parse JSON response: %w", err)
	}
	if response.Inputs == nil {
		return nil, errors.New("response does not contain an 'inputs' field")
	}
	seen := map[string]bool{}
	for i, input := range response.Inputs {
		id, ok := input["id"].(string)
		if !ok {
			return nil, fmt.Errorf("input at index %d has no string 'id' field", i)
		}
		if seen[id] {
			return nil, fmt.Errorf("input at index %d has a duplicate 'id' value '%s'", i, id)
		}
		seen[id] = true
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100 // DefaultResourceSetInputProviderFilterLimit
	}
	if len(response.Inputs) > limit {
		response.Inputs = response.Inputs[:limit]
	}
	out := make([]map[string]any, 0, len(response.Inputs))
	for _, input := range response.Inputs {
		stored := make(map[string]any, len(input))
		for k, v := range input {
			raw, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			value, err := unmarshalPreservingInts(raw)
			if err != nil {
				return nil, err
			}
			stored[k] = value
		}
		out = append(out, stored)
	}
	return out, nil
}

// unmarshalPreservingInts decodes like k8s.io/apimachinery/pkg/util/json.Unmarshal into an
// interface{}: whole numbers become int64, the others float64.
func unmarshalPreservingInts(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return convertNumbers(v)
}

func convertNumbers(v any) (any, error) {
	var err error
	switch t := v.(type) {
	case json.Number:
		if i, e := t.Int64(); e == nil {
			return i, nil
		}
		return t.Float64()
	case map[string]any:
		for k, e := range t {
			if t[k], err = convertNumbers(e); err != nil {
				return nil, err
			}
		}
	case []any:
		for i, e := range t {
			if t[i], err = convertNumbers(e); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// render executes the template for one input and decodes the documents it produces.
func render(text string, input map[string]any) (objects []map[string]any, dropped []string, err error) {
	tp, err := template.New("resourceset").
		Delims("<<", ">>").
		Funcs(slimSprig()).
		Funcs(template.FuncMap{"slugify": slugify}).
		Funcs(template.FuncMap{"inputs": func() any { return input }}).
		Funcs(template.FuncMap{"toYaml": toYaml, "mustToYaml": mustToYaml}).
		Option("missingkey=error").
		Parse(text)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to parse multi-doc YAML template: %w", err)
	}
	var b strings.Builder
	if err := tp.Execute(&b, nil); err != nil {
		return nil, nil, fmt.Errorf("failed to execute multi-doc YAML template: %w", err)
	}
	if strings.HasPrefix(strings.TrimLeft(b.String(), " \t\r\n"), "{") {
		// apimachinery would read the output as a stream of JSON objects instead.
		return nil, nil, errors.New("output starting with '{' (a JSON stream) is not handled by this renderer")
	}
	docs, err := splitDocuments(b.String())
	if err != nil {
		return nil, nil, fmt.Errorf("failed to read objects from multi-doc YAML: %w", err)
	}
	for _, doc := range docs {
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			return nil, nil, fmt.Errorf("failed to read objects from multi-doc YAML: %w\n%s", err, doc)
		}
		if string(j) == "null" {
			continue // an empty document: decodes to nothing and is skipped
		}
		var object map[string]any
		if err := json.Unmarshal(j, &object); err != nil {
			return nil, nil, fmt.Errorf("failed to read objects from multi-doc YAML: %w\n%s", err, doc)
		}
		if s, _ := object["kind"].(string); s == "" {
			return nil, nil, fmt.Errorf("failed to read objects from multi-doc YAML: Object 'Kind' is missing in\n%s", doc)
		}
		if _, isList := object["items"].([]any); isList {
			return nil, nil, errors.New("List objects are not handled by this renderer")
		}
		if str(object, "apiVersion") == "" || str(object, "kind") == "" || name(object) == "" {
			dropped = append(dropped, doc) // ssa.ReadObjects drops these without a word
			continue
		}
		objects = append(objects, object)
	}
	return objects, dropped, nil
}

// splitDocuments splits YAML documents as apimachinery's YAMLReader does: a line starting
// with "---" ends a document, only spaces or a comment may follow it, and documents with
// no bytes at all are skipped (whitespace-only ones decode to null above).
func splitDocuments(s string) ([]string, error) {
	var docs []string
	var doc strings.Builder
	reader := bufio.NewReader(strings.NewReader(s))
	for {
		line, err := reader.ReadString('\n')
		if err != nil && err != io.EOF {
			return nil, err
		}
		line = strings.TrimSuffix(line, "\n") + "\n" // LineReader ends every line with '\n'
		if strings.HasPrefix(line, "---") {
			rest := strings.TrimSpace(line[3:])
			if rest != "" && rest[0] != '#' {
				return nil, fmt.Errorf("invalid Yaml document separator: %s", rest)
			}
			if doc.Len() > 0 {
				docs = append(docs, doc.String())
				doc.Reset()
			}
			if err == io.EOF {
				return docs, nil
			}
			continue
		}
		if err == io.EOF {
			if doc.Len() > 0 {
				docs = append(docs, doc.String())
			}
			return docs, nil
		}
		doc.WriteString(line)
	}
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func name(object map[string]any) string {
	metadata, _ := object["metadata"].(map[string]any)
	return str(metadata, "name")
}

func annotation(object map[string]any, key string) string {
	metadata, _ := object["metadata"].(map[string]any)
	annotations, _ := metadata["annotations"].(map[string]any)
	return str(annotations, key)
}

// objectKey is flux-operator's deduplication key: group, kind, namespace, name.
func objectKey(object map[string]any) string {
	group := ""
	if apiVersion := str(object, "apiVersion"); strings.Contains(apiVersion, "/") {
		group = apiVersion[:strings.Index(apiVersion, "/")]
	}
	metadata, _ := object["metadata"].(map[string]any)
	return strings.Join([]string{group, str(object, "kind"), str(metadata, "namespace"), name(object)}, "/")
}

// toYaml and mustToYaml are flux-operator's: sigs.k8s.io/yaml, "" on error for toYaml.
func toYaml(v any) string {
	if b, err := mustToYaml(v); err == nil {
		return b
	}
	return ""
}

func mustToYaml(v any) (string, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// slimSprigNames are the functions of go-task/slim-sprig v3.0.0's HermeticTxtFuncMap, the
// set flux-operator uses. Debian packages Masterminds/sprig, of which slim-sprig is a
// subset; taking only these names keeps a template from using a function Flux lacks.
var slimSprigNames = strings.Fields(`
	add add1 adler32sum ago all any append atoi b32dec b32enc b64dec b64enc base biggest cat
	ceil chunk clean coalesce compact concat contains deepEqual default dict dig dir div
	duration durationRound empty ext fail first float64 floor fromJson get has hasKey
	hasPrefix hasSuffix hello indent initial int int64 isAbs join keys kindIs kindOf last list
	lower max maxf min minf mod mul mustAppend mustChunk mustCompact mustDateModify mustFirst
	mustFromJson mustHas mustInitial mustLast mustPrepend mustPush mustRegexFind
	mustRegexFindAll mustRegexMatch mustRegexReplaceAll mustRegexReplaceAllLiteral
	mustRegexSplit mustRest mustReverse mustSlice mustToDate mustToJson mustToPrettyJson
	mustToRawJson mustUniq mustWithout must_date_modify nindent omit osBase osClean osDir osExt
	osIsAbs pick pluck plural prepend push quote randInt regexFind regexFindAll regexMatch
	regexQuoteMeta regexReplaceAll regexReplaceAllLiteral regexSplit repeat replace rest
	reverse round seq set sha1sum sha256sum slice sortAlpha split splitList splitn squote sub
	substr ternary title toDate toDecimal toJson toPrettyJson toRawJson toString toStrings
	trim trimAll trimPrefix trimSuffix trimall trunc tuple typeIs typeIsLike typeOf uniq
	unixEpoch unset until untilStep upper urlJoin urlParse values without`)

func slimSprig() template.FuncMap {
	all := sprig.TxtFuncMap()
	funcs := template.FuncMap{}
	for _, n := range slimSprigNames {
		f, ok := all[n]
		if !ok {
			fail("sprig has no function %q that slim-sprig has", n)
		}
		funcs[n] = f
	}
	return funcs
}
