package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// writeFile writes a YAML file into a fresh temp dir and returns its path.
func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "worker.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t *testing.T, opts LoadOptions) Config {
	t.Helper()
	cfg, err := Load(opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// wantErr checks that err wraps ErrInvalid and that its message contains
// every fragment.
func wantErr(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", fragments)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %q does not wrap ErrInvalid", err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not contain %q", err, f)
		}
	}
}

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	cfg := mustLoad(t, LoadOptions{})
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("Load with no sources differs from Default:\n%+v\n%+v", cfg, Default())
	}
}

func TestDefaultReturnsFreshValues(t *testing.T) {
	t.Parallel()
	a := Default()
	a.Retry.On[0] = "changed"
	a.Invoke.Endpoints["x"] = "y"
	b := Default()
	if b.Retry.On[0] != "network" || len(b.Invoke.Endpoints) != 0 {
		t.Error("Default shares slices or maps between calls")
	}
}

func TestWorkerYAMLIsDefault(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, LoadOptions{File: "../configs/worker.yaml", Environ: []string{}})
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("configs/worker.yaml differs from Default():\nfile:    %+v\ndefault: %+v", cfg, Default())
	}
}

func TestWorkerYAMLDocumentsEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../configs/worker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			found[key] = true
			if k.HeadComment == "" && v.Kind != yaml.MappingNode {
				t.Errorf("%s has no comment", key)
			}
			if v.Kind == yaml.MappingNode && len(v.Content) > 0 {
				walk(v, key)
			}
		}
	}
	walk(doc.Content[0], "")
	for _, k := range Keys() {
		if !found[k] {
			t.Errorf("configs/worker.yaml does not document %s", k)
		}
	}
}

func TestKeysAndEnvNames(t *testing.T) {
	t.Parallel()
	keys := Keys()
	if !slices.IsSorted(keys) {
		t.Error("Keys is not sorted")
	}
	for _, want := range []string{"nats.url", "nats.tls.ca", "nats.embedded.max_payload", "invoke.timeout.read",
		"invoke.oci.config_file", "retry.max_attempts", "emulator.functions", "invoke.endpoints"} {
		if !slices.Contains(keys, want) {
			t.Errorf("Keys lacks %s", want)
		}
	}
	envs := map[string]string{}
	for _, k := range keys {
		e := EnvName(k)
		if other, dup := envs[e]; dup {
			t.Errorf("%s and %s share %s", k, other, e)
		}
		envs[e] = k
	}
	for key, env := range map[string]string{
		"nats.url":               "WORKER_NATS_URL",
		"invoke.timeout.read":    "WORKER_INVOKE_TIMEOUT_READ",
		"invoke.oci.config_file": "WORKER_INVOKE_OCI_CONFIG_FILE",
		"retry.max_attempts":     "WORKER_RETRY_MAX_ATTEMPTS",
	} {
		if got := EnvName(key); got != env {
			t.Errorf("EnvName(%s) = %s, want %s", key, got, env)
		}
	}
}

// TestEveryKeyFromEnv sets every key from the environment to its default's
// string form, which exercises the parser of every leaf and the env name of
// every key.
func TestEveryKeyFromEnv(t *testing.T) {
	t.Parallel()
	def := Default()
	var env []string
	for _, l := range leaves() {
		f := reflect.ValueOf(def).FieldByIndex(l.index).Interface()
		var s string
		switch f := f.(type) {
		case []string:
			s = strings.Join(f, ",")
		case map[string]string:
			for k, v := range f {
				s += k + "=" + v + ","
			}
		default:
			s = fmt.Sprint(f)
		}
		env = append(env, EnvName(l.key)+"="+s)
	}
	if got := mustLoad(t, LoadOptions{Environ: env}); !reflect.DeepEqual(got, Default()) {
		t.Errorf("got  %+v\nwant %+v", got, Default())
	}
}

func TestYAMLOverridesDefaults(t *testing.T) {
	t.Parallel()
	p := writeFile(t, `
nats:
  url: nats://a:4222,nats://b:4222
  tls: {ca: /etc/ca.pem}
  embedded:
    max_payload: 16MiB
streams:
  jobs_subjects:
    - invoke.jobs.>
    - extra.jobs.*
  jobs_max_age: 48h
worker:
  concurrency: 8
  per_function_rate: 2.5
invoke:
  request_limit: 1048576
  endpoints:
    ocid1.fnfunc.oc1.phx.aaa: https://x.example.com
    ocid1.fnfunc.oc1.phx.bbb: http://127.0.0.1:8080
http:
  pprof: true
retry:
  never: ["504/FunctionInvokeTimeout"]
log:
  level: debug
  format:   # null keeps the default
emulator:
  functions:
    ocid1.fnfunc.oc1.phx.aaa: "fail:500"
`)
	cfg := mustLoad(t, LoadOptions{File: p})
	want := Default()
	want.NATS.URL = "nats://a:4222,nats://b:4222"
	want.NATS.TLS.CA = "/etc/ca.pem"
	want.NATS.Embedded.MaxPayload = 16 * MiB
	want.Streams.JobsSubjects = []string{"invoke.jobs.>", "extra.jobs.*"}
	want.Streams.JobsMaxAge = 48 * time.Hour
	want.Worker.Concurrency = 8
	want.Worker.PerFunctionRate = 2.5
	want.Invoke.RequestLimit = 1 << 20
	want.Invoke.Endpoints = map[string]string{
		"ocid1.fnfunc.oc1.phx.aaa": "https://x.example.com",
		"ocid1.fnfunc.oc1.phx.bbb": "http://127.0.0.1:8080",
	}
	want.HTTP.Pprof = true
	want.Retry.Never = []string{"504/FunctionInvokeTimeout"}
	want.Log.Level = "debug"
	want.Emulator.Functions = map[string]string{"ocid1.fnfunc.oc1.phx.aaa": "fail:500"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestYAMLAnchorsAndMerge(t *testing.T) {
	t.Parallel()
	p := writeFile(t, `
invoke:
  endpoints: &eps
    ocid1.fnfunc.oc1.phx.aaa: https://x.example.com
emulator:
  functions:
    <<: {ocid1.fnfunc.oc1.phx.aaa: echo, ocid1.fnfunc.oc1.phx.bbb: echo}
    ocid1.fnfunc.oc1.phx.bbb: "sleep:1s"
retry:
  on: &on [network]
  never: *on
`)
	cfg := mustLoad(t, LoadOptions{File: p})
	if got := cfg.Invoke.Endpoints["ocid1.fnfunc.oc1.phx.aaa"]; got != "https://x.example.com" {
		t.Errorf("endpoints = %v", cfg.Invoke.Endpoints)
	}
	wantFns := map[string]string{"ocid1.fnfunc.oc1.phx.aaa": "echo", "ocid1.fnfunc.oc1.phx.bbb": "sleep:1s"}
	if !reflect.DeepEqual(cfg.Emulator.Functions, wantFns) {
		t.Errorf("functions = %v, want %v (explicit keys win over merged ones)", cfg.Emulator.Functions, wantFns)
	}
	if !reflect.DeepEqual(cfg.Retry.Never, []string{"network"}) {
		t.Errorf("never = %v", cfg.Retry.Never)
	}
}

func TestEmptyFiles(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", "# only a comment\n", "---\n", "null\n", "nats:\n"} {
		cfg := mustLoad(t, LoadOptions{File: writeFile(t, body)})
		if !reflect.DeepEqual(cfg, Default()) {
			t.Errorf("%q: not the defaults", body)
		}
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "nats:\n  url: nats://file:4222\n  name: from-file\nworker:\n  concurrency: 2\n")
	env := []string{
		"PATH=/bin",
		"WORKER_NATS_URL=nats://env:4222",
		"WORKER_WORKER_CONCURRENCY=3",
		"worker_nats_name=ignored-lowercase",
	}
	cfg := mustLoad(t, LoadOptions{File: p, Environ: env})
	if cfg.NATS.URL != "nats://env:4222" || cfg.Worker.Concurrency != 3 || cfg.NATS.Name != "from-file" {
		t.Errorf("env does not beat the file: %+v", cfg.NATS)
	}
	cfg = mustLoad(t, LoadOptions{File: p, Environ: env, Overrides: []Override{
		{Key: "nats.url", Value: "nats://flag:4222"},
		{Key: "worker.concurrency", Value: "4"},
	}})
	if cfg.NATS.URL != "nats://flag:4222" || cfg.Worker.Concurrency != 4 {
		t.Errorf("overrides do not beat env: %+v", cfg)
	}
}

func TestEnvListsAndMaps(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "retry:\n  on: [network, \"500\"]\ninvoke:\n  endpoints:\n    a: https://a.example.com\n")
	cfg := mustLoad(t, LoadOptions{File: p, Environ: []string{
		"WORKER_RETRY_ON=network, 429 ,503,",
		"WORKER_RETRY_NEVER=",
		"WORKER_INVOKE_ENDPOINTS=ocid1.fnfunc.x=https://x.example.com/p?q=1, ocid1.fnfunc.y=http://127.0.0.1:9",
		"WORKER_STREAMS_JOBS_SUBJECTS=a.>,b.*",
		"WORKER_EMULATOR_FUNCTIONS=",
		"WORKER_INVOKE_OCI_CONFIG_FILE=/etc/oci/config",
		"WORKER_INVOKE_TIMEOUT_READ=80s",
		"WORKER_HTTP_PPROF=true",
		"WORKER_INVOKE_RESPONSE_LIMIT=64 MiB",
	}})
	if want := []string{"network", "429", "503"}; !reflect.DeepEqual(cfg.Retry.On, want) {
		t.Errorf("retry.on = %q, want %q", cfg.Retry.On, want)
	}
	if cfg.Retry.Never == nil || len(cfg.Retry.Never) != 0 {
		t.Errorf("retry.never = %#v, want empty", cfg.Retry.Never)
	}
	wantEP := map[string]string{"ocid1.fnfunc.x": "https://x.example.com/p?q=1", "ocid1.fnfunc.y": "http://127.0.0.1:9"}
	if !reflect.DeepEqual(cfg.Invoke.Endpoints, wantEP) {
		t.Errorf("endpoints = %v, want %v (env replaces the file's map)", cfg.Invoke.Endpoints, wantEP)
	}
	if !reflect.DeepEqual(cfg.Streams.JobsSubjects, []string{"a.>", "b.*"}) {
		t.Errorf("jobs_subjects = %q", cfg.Streams.JobsSubjects)
	}
	if cfg.Invoke.OCI.ConfigFile != "/etc/oci/config" || cfg.Invoke.Timeout.Read != 80*time.Second ||
		!cfg.HTTP.Pprof || cfg.Invoke.ResponseLimit != 64*MiB {
		t.Errorf("scalars from env not applied: %+v %+v", cfg.Invoke, cfg.HTTP)
	}
}

func TestUnknownKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  LoadOptions
		key   string
		frags []string
	}{
		{"nested yaml", LoadOptions{File: writeFile(t, "# c\n\nnats:\n  urll: x\n")}, "nats.urll",
			[]string{"config: nats.urll: unknown key (line 4; did you mean nats.url?)"}},
		{"deep yaml", LoadOptions{File: writeFile(t, "invoke:\n  timeout:\n    reed: 1s\n")}, "invoke.timeout.reed",
			[]string{"invoke.timeout.reed: unknown key (line 3", "invoke.timeout.read"}},
		{"section yaml", LoadOptions{File: writeFile(t, "natz:\n  url: x\n")}, "natz", []string{"natz: unknown key (line 1; did you mean nats?)"}},
		{"env", LoadOptions{Environ: []string{"WORKER_NATS_URLL=x"}}, "WORKER_NATS_URLL",
			[]string{"config: WORKER_NATS_URLL: unknown key", "WORKER_NATS_URL?"}},
		{"env far", LoadOptions{Environ: []string{"WORKER_SOMETHING_ELSE=1"}}, "WORKER_SOMETHING_ELSE",
			[]string{"WORKER_SOMETHING_ELSE: unknown key"}},
		{"override", LoadOptions{Overrides: []Override{{Key: "worker.concurency", Value: "1"}}}, "worker.concurency",
			[]string{"did you mean worker.concurrency?"}},
		{"override section", LoadOptions{Overrides: []Override{{Key: "nats.tls", Value: "1"}}}, "nats.tls",
			[]string{"a section, not a key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(tt.opts)
			wantErr(t, err, tt.frags...)
			if !errors.Is(err, ErrUnknownKey) {
				t.Errorf("%v does not wrap ErrUnknownKey", err)
			}
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tt.key {
				t.Errorf("KeyError.Key = %v, want %s", ke, tt.key)
			}
		})
	}
}

func TestBadValuesNameTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, value string
		frag       string
	}{
		{"worker.concurrency", "abc", `"abc" is not an integer`},
		{"worker.concurrency", "1.5", `"1.5" is not an integer`},
		{"retry.multiplier", "two", `"two" is not a number`},
		{"retry.multiplier", "NaN", `"NaN" is not a number`},
		{"http.pprof", "yes", `"yes" is not a boolean`},
		{"consumer.ack_wait", "30", `"30" is not a duration`},
		{"consumer.ack_wait", "soon", `"soon" is not a duration`},
		{"invoke.request_limit", "bad", `"bad" is not a size`},
		{"invoke.request_limit", "8XB", `"8XB" is not a size`},
		{"invoke.request_limit", "99999EiB", `too large`},
		{"invoke.endpoints", "ocid1=https://x,nokey", `"nokey" is not key=value`},
		{"invoke.endpoints", "a=https://x,a=https://y", `a is given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			// As an override.
			_, err := Load(LoadOptions{Overrides: []Override{{Key: tt.key, Value: tt.value}}})
			wantErr(t, err, "config: "+tt.key+": ", tt.frag)
			// From the environment, which also names the variable.
			env := EnvName(tt.key)
			_, err = Load(LoadOptions{Environ: []string{env + "=" + tt.value}})
			wantErr(t, err, "config: "+tt.key+": ", tt.frag, "(from "+env+")")
			// From YAML, with the line.
			section, leafKey, _ := strings.Cut(tt.key, ".")
			body := "\n" + section + ":\n  " + leafKey + ": " + yamlQuote(tt.value) + "\n"
			_, err = Load(LoadOptions{File: writeFile(t, body)})
			wantErr(t, err, "config: "+tt.key+": ", tt.frag, "(line 3)")
		})
	}
}

func yamlQuote(s string) string {
	b, err := yaml.Marshal(s)
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(b))
}

func TestYAMLShapeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ body, frag string }{
		{"nats: x\n", "config: nats: must be a mapping of keys, got a single value (line 1)"},
		{"worker:\n  concurrency: [1]\n", "config: worker.concurrency: must be a single value, got a list (line 2)"},
		{"retry:\n  on: {a: b}\n", "config: retry.on: must be a list, got a mapping (line 2)"},
		{"retry:\n  on: [network, [x]]\n", "config: retry.on: element 2 must be a string, got a list (line 2)"},
		{"invoke:\n  endpoints: [a]\n", "config: invoke.endpoints: must be a mapping, got a list (line 2)"},
		{"invoke:\n  endpoints:\n    a:\n", "config: invoke.endpoints: a: value must be a string, got a null (line 3)"},
		{"invoke:\n  endpoints:\n    a: https://a\n    a: https://b\n", "config: invoke.endpoints: a: given twice (lines 3 and 4)"},
		{"nats:\n  url: a\n  url: b\n", "config: nats.url: given twice (lines 2 and 3)"},
		{"- a\n", "top level must be a mapping"},
		{"nats: [\n", "yaml: "},
		{"nats: {}\n---\nnats: {}\n", "a second YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.frag, func(t *testing.T) {
			t.Parallel()
			_, err := Load(LoadOptions{File: writeFile(t, tt.body)})
			wantErr(t, err, tt.frag)
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "nats:\n  urll: x\nworker:\n  concurrency: abc\n")
	_, err := Load(LoadOptions{File: p, Environ: []string{"WORKER_RETRY_MAX_ATTEMPTS=x"}})
	wantErr(t, err, "nats.urll", "worker.concurrency", "retry.max_attempts")
}

func TestMissingFile(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(LoadOptions{File: missing})
	wantErr(t, err, missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v does not wrap fs.ErrNotExist", err)
	}
}

func TestSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Size
		str  string
	}{
		{"1048576", 1 << 20, "1MiB"},
		{"64KiB", 64 << 10, "64KiB"},
		{"8MiB", 8 << 20, "8MiB"},
		{"8 MiB", 8 << 20, "8MiB"},
		{"1GiB", 1 << 30, "1GiB"},
		{"6MB", 6000000, "6000000"},
		{"1000", 1000, "1000"},
		{"1.5KiB", 1536, "1536"},
		{"0", 0, "0"},
		{"3TiB", 3 << 40, "3TiB"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			continue
		}
		if got.String() != tt.str {
			t.Errorf("Size(%d).String() = %q, want %q", got, got.String(), tt.str)
		}
		if back, err := ParseSize(got.String()); err != nil || back != got {
			t.Errorf("%q does not parse back: %d, %v", got.String(), back, err)
		}
	}
	for _, bad := range []string{"bad", "", "-1", "MiB", "8 MiBs", "99999999EiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestDurations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
	}{{"250ms", 250 * time.Millisecond}, {"2m", 2 * time.Minute}, {"0", 0}, {"1h30m", 90 * time.Minute}, {" 5s ", 5 * time.Second}}
	for _, tt := range tests {
		cfg := mustLoad(t, LoadOptions{Overrides: []Override{{Key: "worker.max_job_age", Value: tt.in}}})
		if cfg.Worker.MaxJobAge != tt.want {
			t.Errorf("%q = %s, want %s", tt.in, cfg.Worker.MaxJobAge, tt.want)
		}
	}
}

// TestMarshalRoundTrip checks that a Config printed as YAML (e.g. by a
// "show config" command) loads back to the same value.
func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.Invoke.Endpoints["ocid1.fnfunc.x"] = "https://x.example.com"
	cfg.Invoke.RequestLimit = 1000
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := mustLoad(t, LoadOptions{File: writeFile(t, string(out))})
	if !reflect.DeepEqual(got, cfg) {
		t.Errorf("round trip differs:\n%s\ngot  %+v\nwant %+v", out, got, cfg)
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.NATS.Password = "hunter2"
	cfg.NATS.User = "bob"
	cfg.NATS.Token = "t0ken-secret"
	cfg.Invoke.OCI.Passphrase = "phrase-secret"
	cfg.NATS.URL = "nats://alice:s3cret@a:4222, nats://sometoken@b:4222,nats://c:4222"
	r := cfg.Redacted()
	if r.NATS.Password != "REDACTED" || r.NATS.Token != "REDACTED" || r.Invoke.OCI.Passphrase != "REDACTED" {
		t.Errorf("secrets not redacted: %+v", r)
	}
	if r.NATS.User != "bob" {
		t.Errorf("user changed: %q", r.NATS.User)
	}
	for _, secret := range []string{"hunter2", "t0ken-secret", "phrase-secret", "s3cret", "sometoken"} {
		if strings.Contains(mustYAML(t, r), secret) {
			t.Errorf("%q still visible", secret)
		}
	}
	if want := "nats://alice:REDACTED@a:4222,nats://REDACTED@b:4222,nats://c:4222"; r.NATS.URL != want {
		t.Errorf("url = %q, want %q", r.NATS.URL, want)
	}
	if cfg.NATS.Password != "hunter2" {
		t.Error("Redacted changed the original")
	}
	r.Retry.On[0] = "changed"
	if cfg.Retry.On[0] != "network" {
		t.Error("Redacted shares slices with the original")
	}
	// Unset secrets stay empty, so logs show they are not configured.
	if d := Default().Redacted(); d.NATS.Password != "" || d.NATS.Token != "" {
		t.Error("empty secrets were filled in")
	}
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestKeyErrorWrapping(t *testing.T) {
	t.Parallel()
	cause := errors.New("boom")
	err := error(&KeyError{Key: "retry.max_attempts", Err: cause})
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, cause) {
		t.Error("KeyError does not wrap ErrInvalid and its cause")
	}
	if err.Error() != "config: retry.max_attempts: boom" {
		t.Errorf("message = %q", err)
	}
}

// TestKubernetesServiceLinksAreNotKeys: a Service named "worker" makes
// Kubernetes inject WORKER_SERVICE_HOST and WORKER_PORT... into pods; they
// must not stop the worker from starting.
func TestKubernetesServiceLinksAreNotKeys(t *testing.T) {
	t.Parallel()
	env := []string{"WORKER_SERVICE_HOST=10.0.0.1", "WORKER_SERVICE_PORT=9090", "WORKER_PORT=tcp://10.0.0.1:9090", "WORKER_PORT_9090_TCP_ADDR=10.0.0.1"}
	if _, err := Load(LoadOptions{Environ: env}); err != nil {
		t.Fatalf("service-link variables rejected: %v", err)
	}
	if _, err := Load(LoadOptions{Environ: []string{"WORKER_SERVICEX=1"}}); err == nil {
		t.Fatal("an unknown WORKER_ variable was accepted")
	}
}

// Read is Load without Validate: worker doctor explains what Load refuses,
// but a file it cannot parse is still an error.
func TestReadKeepsWhatValidateRefuses(t *testing.T) {
	p := writeFile(t, "consumer:\n  ack_wait: 10s\n")
	if _, err := Load(LoadOptions{File: p}); err == nil {
		t.Fatal("Load accepted an ack_wait shorter than the read timeout")
	}
	cfg, err := Read(LoadOptions{File: p})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if cfg.Consumer.AckWait != 10*time.Second || cfg.Validate() == nil {
		t.Errorf("Read gave ack_wait %s", cfg.Consumer.AckWait)
	}
	_, err = Read(LoadOptions{File: writeFile(t, "consumer:\n  ack_wiat: 10s\n")})
	wantErr(t, err, "consumer.ack_wiat")
}
