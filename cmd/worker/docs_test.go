package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = "../.."

// commands returns every command of the CLI with its path ("worker dlq
// replay"), cobra's own (help, completion's children) left out.
func commands() map[string]*cobra.Command {
	out := map[string]*cobra.Command{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		out[c.CommandPath()] = c
		for _, sub := range c.Commands() {
			if sub.Name() == "help" || c.Name() == "completion" {
				continue
			}
			walk(sub)
		}
	}
	walk(newRootCmd(nil, io.Discard, io.Discard))
	return out
}

// helpText is everything a command's --help prints that a person wrote.
func helpText(c *cobra.Command) string {
	parts := []string{c.Use, c.Short, c.Long, c.Example}
	c.LocalFlags().VisitAll(func(f *pflag.Flag) { parts = append(parts, f.Usage) })
	return strings.Join(parts, "\n")
}

var docPath = regexp.MustCompile(`\bdocs/[A-Za-z0-9_./-]+\.md\b`)

// TestDocumentsMentionedExist: every docs/….md that a --help text, the
// README or any other file of the repository names exists (a help text
// once sent operators to a docs/operations.md that was not there).
func TestDocumentsMentionedExist(t *testing.T) {
	t.Parallel()
	check := func(where, text string) {
		for _, p := range docPath.FindAllString(text, -1) {
			if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil {
				t.Errorf("%s names %s, which does not exist", where, p)
			}
		}
	}
	for path, c := range commands() {
		check(path+" --help", helpText(c))
	}
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == ".git" || d.Name() == "data" || d.Name() == "bin"):
			return filepath.SkipDir
		case d.IsDir():
			return nil
		}
		switch filepath.Ext(p) {
		case ".go", ".md", ".yaml", ".yml", ".sh", "":
		default:
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		check(strings.TrimPrefix(p, repoRoot+"/"), string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
)

// anchor is GitHub's id of a heading: lower case, punctuation but - and _
// dropped, spaces as hyphens.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestMarkdownLinksResolve: every relative link in the README and docs/
// reaches a file, and a #fragment a heading of it.
func TestMarkdownLinksResolve(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	files = append(files, filepath.Join(repoRoot, "README.md"), filepath.Join(repoRoot, "BENCHMARKS.md"))
	for _, f := range files {
		name := strings.TrimPrefix(f, repoRoot+"/")
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			p := f
			if file != "" {
				p = filepath.Join(filepath.Dir(f), file)
			}
			tb, err := os.ReadFile(p)
			if err != nil {
				if !errorIsDir(p) {
					t.Errorf("%s links to %s, which does not exist", name, target)
				}
				continue
			}
			if frag == "" {
				continue
			}
			found := false
			for _, h := range mdHeading.FindAllStringSubmatch(string(tb), -1) {
				if anchor(h[1]) == frag {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s links to %s: no heading #%s there", name, target, frag)
			}
		}
	}
}

func errorIsDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// contractSections splits docs/contract.md into its sections by heading.
func contractSections(t *testing.T) (whole string, sections map[string]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "contract.md"))
	if err != nil {
		t.Fatal(err)
	}
	whole = string(b)
	sections = map[string]string{}
	locs := mdHeading.FindAllStringSubmatchIndex(whole, -1)
	for i, l := range locs {
		end := len(whole)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		h := whole[l[2]:l[3]]
		if _, dup := sections[h]; dup {
			t.Errorf("docs/contract.md has two headings %q: links to the second reach the first", h)
		}
		sections[h] = whole[l[1]:end]
	}
	return whole, sections
}

var commandHeading = regexp.MustCompile("^`worker( [a-z-]+)*`$")

// TestContractDocumentsEveryCommandAndFlag: every command has a section of
// its own in docs/contract.md ("### `worker dlq replay`"), every section of
// that form is a command, and each flag a command takes is named in its
// section or an ancestor's (the dlq filters are described once, under
// `worker dlq`; the global flags under `worker`).
func TestContractDocumentsEveryCommandAndFlag(t *testing.T) {
	t.Parallel()
	_, sections := contractSections(t)
	cmds := commands()
	for path, c := range cmds {
		text, ok := sections["`"+path+"`"]
		if !ok {
			t.Errorf("docs/contract.md has no section ### `%s`", path)
			continue
		}
		if path == "worker bench" {
			continue // a development tool: its flags are not part of the contract
		}
		for p := c.Parent(); p != nil; p = p.Parent() {
			text += sections["`"+p.CommandPath()+"`"]
		}
		flags := c.LocalNonPersistentFlags()
		if c.Parent() == nil {
			flags = c.PersistentFlags()
		} else {
			c.PersistentFlags().VisitAll(func(f *pflag.Flag) { flags.AddFlag(f) })
		}
		flags.VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !strings.Contains(text, "--"+f.Name) {
				t.Errorf("docs/contract.md does not name %s --%s in its section", path, f.Name)
			}
		})
	}
	for heading := range sections {
		if commandHeading.MatchString(heading) {
			if _, ok := cmds[strings.Trim(heading, "`")]; !ok {
				t.Errorf("docs/contract.md has a section %s, which is not a command", heading)
			}
		}
	}
}

// TestContractNamesEveryHeader: every header name the code defines (the
// Header… constants of job and dlq) is in docs/contract.md.
func TestContractNamesEveryHeader(t *testing.T) {
	t.Parallel()
	whole, _ := contractSections(t)
	fset := token.NewFileSet()
	n := 0
	for _, dir := range []string{"job", "dlq"} {
		//lint:ignore SA1019 the header constants live in plain files without build tags
		pkgs, err := parser.ParseDir(fset, filepath.Join(repoRoot, dir), func(fi fs.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, pkg := range pkgs {
			ast.Inspect(pkg, func(node ast.Node) bool {
				spec, ok := node.(*ast.ValueSpec)
				if !ok {
					return true
				}
				for i, name := range spec.Names {
					if !strings.HasPrefix(name.Name, "Header") || i >= len(spec.Values) {
						continue
					}
					lit, ok := spec.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, _ := strconv.Unquote(lit.Value)
					n++
					if !strings.Contains(whole, "`"+v+"`") {
						t.Errorf("docs/contract.md does not name the header %s (%s.%s)", v, dir, name.Name)
					}
				}
				return true
			})
		}
	}
	if n < 20 {
		t.Fatalf("found only %d header constants: the scan is broken", n)
	}
}
