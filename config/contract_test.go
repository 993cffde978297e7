package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// contractRow is one row of a key table in docs/contract.md:
// | `key` | default | meaning |.
var contractRow = regexp.MustCompile("(?m)^\\| `([a-z0-9_.\\[\\]]+)` \\| (.*?) \\| .* \\|$")

// contractPending names keys whose shipped default still differs from
// docs/contract.md, with the defect that makes it differ. The test fails
// once a key agrees, so that its entry goes.
var contractPending = map[string]string{}

// TestContractDocumentsEveryKeyAndItsDefault holds docs/contract.md, the one
// place defaults are written in prose, to the code: every key has exactly
// one row, and the row's default, read back through Load as an override,
// is the key's default.
func TestContractDocumentsEveryKeyAndItsDefault(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, m := range contractRow.FindAllStringSubmatch(string(data), -1) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("docs/contract.md has two rows for %s", m[1])
		}
		rows[m[1]] = m[2]
	}
	base := mustLoad(t, LoadOptions{Environ: []string{}})
	for _, key := range Keys() {
		if _, list := fileOnly(key, false); list {
			continue // the list's element keys are checked below
		}
		def, ok := rows[key]
		if !ok {
			t.Errorf("docs/contract.md has no row for %s", key)
			continue
		}
		var value string
		switch {
		case def == "empty":
		case strings.Count(def, "`") == 2 && strings.HasPrefix(def, "`") && strings.HasSuffix(def, "`"):
			value = strings.Trim(def, "`")
		default:
			t.Errorf("docs/contract.md: the default of %s is %q; want `value` or empty", key, def)
			continue
		}
		got, err := Load(LoadOptions{Environ: []string{}, Overrides: []Override{{Key: key, Value: value}}})
		same := err == nil && reflect.DeepEqual(got, base)
		switch why, pending := contractPending[key]; {
		case pending && same:
			t.Errorf("%s now agrees with docs/contract.md (%s): remove it from contractPending", key, why)
		case !pending && err != nil:
			t.Errorf("docs/contract.md: the default of %s, %q, does not load: %v", key, def, err)
		case !pending && !same:
			t.Errorf("docs/contract.md says %s defaults to %s; the code's default differs", key, def)
		}
	}
	known := Keys()
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		f := ct.Field(i)
		if !isStructList(f.Type) {
			continue
		}
		for _, key := range typeKeys(f.Type.Elem(), tagName(f)+"[].") {
			known = append(known, key)
			if _, ok := rows[key]; !ok {
				t.Errorf("docs/contract.md has no row for %s", key)
			}
		}
	}
	for key := range rows {
		if !slices.Contains(known, key) {
			t.Errorf("docs/contract.md documents %s, which is not a key", key)
		}
	}
}
