package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// decodeYAML applies a YAML document to cfg. It walks the node tree rather
// than unmarshalling so that unknown keys are errors naming their dotted
// path and line, and so that scalars go through setScalar like every other
// source.
func decodeYAML(data []byte, file string, cfg *Config) []error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // empty, or only comments
			return nil
		}
		return []error{invalid(fmt.Errorf("%s: %w", file, err))}
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err == nil {
			err = fmt.Errorf("line %d: a second YAML document; the file must hold one", next.Line)
		}
		return []error{invalid(fmt.Errorf("%s: %w", file, err))}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return []error{invalid(fmt.Errorf("%s: line %d: the top level must be a mapping of sections, got a %s", file, root.Line, kindName(root)))}
	}
	w := walker{}
	w.structure(root, reflect.ValueOf(cfg).Elem(), "", Keys())
	return w.errs
}

type walker struct {
	errs []error
}

func (w *walker) fail(key string, format string, args ...any) {
	if key == "" { // only a malformed top-level key gets here
		key = "(top level)"
	}
	w.errs = append(w.errs, &KeyError{Key: key, Err: fmt.Errorf(format, args...)})
}

// structure applies mapping n to the struct v, whose dotted path is path;
// keys are the valid keys there, for suggestions.
func (w *walker) structure(n *yaml.Node, v reflect.Value, path string, keys []string) {
	for _, p := range w.pairs(n, path, false) {
		key := join(path, p.key.Value)
		i, ok := fieldIndex(v.Type(), p.key.Value)
		if !ok {
			w.errs = append(w.errs, &KeyError{Key: key, Err: unknownKeyError(key, keys, p.key.Line)})
			continue
		}
		val := resolve(p.val)
		if isNull(val) { // null keeps the default, so `key:` is harmless
			continue
		}
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			if val.Kind != yaml.MappingNode {
				w.fail(key, "must be a mapping of keys, got a %s (line %d)", kindName(val), val.Line)
				continue
			}
			w.structure(val, f, key, keys)
			continue
		}
		if isStructList(f.Type()) {
			w.structList(val, f, key)
			continue
		}
		w.leaf(val, f.Addr().Interface(), key)
	}
}

// structList applies sequence n to the list of sections v: each element
// is a mapping applied to a zero section, named key[i] (from 0) in errors.
func (w *walker) structList(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.SequenceNode {
		w.fail(key, "must be a list of mappings, got a %s (line %d)", kindName(n), n.Line)
		return
	}
	list := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		item = resolve(item)
		path := fmt.Sprintf("%s[%d]", key, i)
		if item.Kind != yaml.MappingNode {
			w.fail(path, "must be a mapping of keys, got a %s (line %d)", kindName(item), item.Line)
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		w.structure(item, elem, path, typeKeys(elem.Type(), path+"."))
		list = reflect.Append(list, elem)
	}
	v.Set(list)
}

// leaf applies a non-null value to the leaf p points to.
func (w *walker) leaf(val *yaml.Node, p any, key string) {
	switch val.Kind {
	case yaml.ScalarNode:
		if err := setScalar(p, val.Value); err != nil {
			w.fail(key, "%w (line %d)", err, val.Line)
		}
		return
	case yaml.SequenceNode:
		if lp, ok := p.(*[]string); ok {
			list := []string{}
			for i, item := range val.Content {
				item = resolve(item)
				if item.Kind != yaml.ScalarNode || isNull(item) {
					w.fail(key, "element %d must be a string, got a %s (line %d)", i+1, kindName(item), item.Line)
					return
				}
				list = append(list, item.Value)
			}
			*lp = list
			return
		}
	case yaml.MappingNode:
		if mp, ok := p.(*map[string]string); ok {
			// The keys here are data (function OCIDs), not config keys.
			m := map[string]string{}
			for _, kv := range w.pairs(val, key, true) {
				v := resolve(kv.val)
				if v.Kind != yaml.ScalarNode || isNull(v) {
					w.fail(key, "%s: value must be a string, got a %s (line %d)", kv.key.Value, kindName(v), v.Line)
					continue
				}
				m[kv.key.Value] = v.Value
			}
			*mp = m
			return
		}
	}
	want := "a single value"
	switch p.(type) {
	case *[]string:
		want = "a list"
	case *map[string]string:
		want = "a mapping"
	}
	w.fail(key, "must be %s, got a %s (line %d)", want, kindName(val), val.Line)
}

type pair struct{ key, val *yaml.Node }

// pairs flattens mapping n, applying YAML merge keys (<<) with their usual
// meaning: explicit keys win over merged ones, earlier merges over later.
// A key given twice explicitly is an error; data says the keys are map
// entries rather than config keys, which changes only the messages.
func (w *walker) pairs(n *yaml.Node, path string, data bool) []pair {
	var out, merged []pair
	seen := map[string]int{} // key -> line
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.fail(path, "a key must be a string, got a %s (line %d)", kindName(k), k.Line)
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, w.mergeSources(v, path, data)...)
			continue
		}
		if line, dup := seen[k.Value]; dup {
			if data {
				w.fail(path, "%s: given twice (lines %d and %d)", k.Value, line, k.Line)
			} else {
				w.fail(join(path, k.Value), "given twice (lines %d and %d)", line, k.Line)
			}
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k, v})
	}
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; !ok {
			seen[p.key.Value] = p.key.Line
			out = append(out, p)
		}
	}
	return out
}

// mergeSources returns the pairs of a merge key's value: one mapping or a
// sequence of them, earlier first.
func (w *walker) mergeSources(v *yaml.Node, path string, data bool) []pair {
	v = resolve(v)
	switch v.Kind {
	case yaml.MappingNode:
		return w.pairs(v, path, data)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range v.Content {
			if item = resolve(item); item.Kind != yaml.MappingNode {
				w.fail(path, "<< must merge mappings, got a %s (line %d)", kindName(item), item.Line)
				continue
			}
			out = append(out, w.pairs(item, path, data)...)
		}
		return out
	}
	w.fail(path, "<< must merge a mapping, got a %s (line %d)", kindName(v), v.Line)
	return nil
}

func fieldIndex(t reflect.Type, name string) (int, bool) {
	for i := range t.NumField() {
		if !notAKey(t.Field(i)) && tagName(t.Field(i)) == name {
			return i, true
		}
	}
	return 0, false
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "null"
	case n.Kind == yaml.MappingNode:
		return "mapping"
	case n.Kind == yaml.SequenceNode:
		return "list"
	}
	return "single value"
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
