package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// leaf is one configuration key and where it lives in Config.
type leaf struct {
	key   string
	index []int
}

// leaves walks Config's yaml tags. It is the only key registry: Keys, env
// names, overrides and the YAML walk all agree because they all come from
// the struct tags.
func leaves() []leaf {
	var out []leaf
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			if notAKey(f) {
				continue
			}
			key := prefix + tagName(f)
			idx := append(slices.Clone(index), i)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, key+".", idx)
				continue
			}
			if isStructList(f.Type) {
				continue // file only: see structLists
			}
			if !isLeafType(f.Type) {
				// A programming error in this package, caught by its tests.
				panic(fmt.Sprintf("config: %s: unsupported type %s", key, f.Type))
			}
			out = append(out, leaf{key: key, index: idx})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// notAKey marks a field filled by Load from other keys (yaml:"-"), such as
// a secret read from a file, that no source may set directly.
func notAKey(f reflect.StructField) bool { return f.Tag.Get("yaml") == "-" }

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		panic(fmt.Sprintf("config: field %s has no yaml tag", f.Name))
	}
	return name
}

// Keys returns every dotted leaf key (nats.url, invoke.timeout.read) and
// every list of sections (routes), sorted.
func Keys() []string {
	var keys []string
	for _, l := range leaves() {
		keys = append(keys, l.key)
	}
	keys = append(keys, structLists()...)
	slices.Sort(keys)
	return keys
}

// isStructList reports a list of sections, such as routes: each element a
// mapping of keys. Such lists come from the file only, since environment
// variables and overrides set one value each.
func isStructList(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct
}

// structLists returns the keys of the lists of sections at the top level.
func structLists() []string {
	var out []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		if isStructList(t.Field(i).Type) {
			out = append(out, tagName(t.Field(i)))
		}
	}
	return out
}

// fileOnly reports whether key (dotted, or an environment variable when
// env is set) belongs to a list of sections, and which.
func fileOnly(key string, env bool) (string, bool) {
	for _, l := range structLists() {
		if env && (key == EnvName(l) || strings.HasPrefix(key, EnvName(l)+"_")) ||
			!env && (key == l || strings.HasPrefix(key, l+".") || strings.HasPrefix(key, l+"[")) {
			return l, true
		}
	}
	return "", false
}

// typeKeys returns the dotted keys of a section type under prefix, for
// suggestions inside list elements.
func typeKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if notAKey(f) {
			continue
		}
		key := prefix + tagName(f)
		if f.Type.Kind() == reflect.Struct {
			out = append(out, typeKeys(f.Type, key+".")...)
			continue
		}
		out = append(out, key)
	}
	return out
}

// EnvPrefix starts every environment variable the worker reads.
const EnvPrefix = "WORKER_"

// EnvName returns the environment variable for a dotted key:
// retry.max_attempts is WORKER_RETRY_MAX_ATTEMPTS.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// isLeafType must list the same types as setScalar.
func isLeafType(t reflect.Type) bool {
	switch reflect.New(t).Interface().(type) {
	case *string, *int, *float64, *bool, *time.Duration, *Size, *[]string, *map[string]string:
		return true
	}
	return false
}

// setScalar parses s into the leaf p points to. It is the one parser per
// type, used for YAML scalars, environment variables and overrides alike.
// Lists are comma-separated and maps are k=v,k2=v2 in this form.
func setScalar(p any, s string) error {
	switch p := p.(type) {
	case *string:
		*p = s
	case *int:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 0)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		*p = int(n)
	case *float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%q is not a number", s)
		}
		*p = f
	case *bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true or false)", s)
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a duration (a number with a unit: 250ms, 30s, 2m)", s)
		}
		*p = d
	case *Size:
		n, err := ParseSize(s)
		if err != nil {
			return err
		}
		*p = n
	case *[]string:
		*p = splitList(s)
	case *map[string]string:
		m := map[string]string{}
		for _, kv := range splitList(s) {
			k, v, ok := strings.Cut(kv, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return fmt.Errorf("%q is not key=value", kv)
			}
			if _, dup := m[k]; dup {
				return fmt.Errorf("%s is given twice", k)
			}
			m[k] = strings.TrimSpace(v)
		}
		*p = m
	default:
		panic(fmt.Sprintf("config: unsupported type %T", p))
	}
	return nil
}

// splitList splits a comma-separated list, trimming blanks and dropping
// empty elements so that a trailing comma is harmless; "" is an empty list.
func splitList(s string) []string {
	out := []string{}
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// suggest returns the candidate a mistyped name most likely meant, or "".
func suggest(name string, candidates []string) string {
	best, bestDist := "", 3 // more than two edits is not a typo
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
