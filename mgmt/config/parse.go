package config

import (
	"encoding"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads the configuration file at path and returns it parsed, with
// defaults applied and validated, as Parse does. A file that can't be read
// gives an error wrapping the os error (errors.Is(err, fs.ErrNotExist)
// works); a file that is wrong gives Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes data as a natgw TOML configuration, applies defaults to
// the keys the file leaves out and validates it (Validate). source names the
// data in error messages (usually the file name; it may be empty).
//
// Parsing is strict: a key the schema doesn't know is an error naming it,
// and so is a known key spelled in another case ("WORKERS"), which the TOML
// decoder alone would accept. A key the file sets is kept as written, even
// when it is 0 or "": only keys left out get their default (ApplyDefaults
// lists them), and Validate then refuses what is invalid.
//
// On failure the error is Errors, listing every problem, each with Source
// set. Two kinds of problem stop the TOML decoder and are reported alone,
// because nothing after them was decoded: a syntax error (reported with its
// line) and a value of the wrong type (reported with its key and, where the
// decoder knows it, its line). Everything else is reported together: unknown
// keys, bad timeouts (with their lines) and everything Validate finds.
func Parse(data []byte, source string) (*Config, error) {
	text := stripBOM(string(data))
	// A first pass into a plain map tells syntax errors, which concern the
	// file, from decoding errors, which concern one key.
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		return nil, withSource(Errors{syntaxError(err, text)}, source)
	}
	var doc document
	md, err := toml.Decode(text, &doc)
	if err != nil {
		fe := decodeError(err)
		locateInArray(fe, raw)
		return nil, withSource(Errors{fe}, source)
	}
	c := &doc.Config
	var p problems
	unknownKeys(&md, c, &p)
	doc.Timeouts.decode(&md, text, &c.Timeouts, &p)
	c.applyDefaults(func(key string, _ bool) bool {
		return !md.IsDefined(strings.Split(key, ".")...)
	})
	if err := c.Validate(); err != nil {
		var errs Errors
		if !errors.As(err, &errs) {
			return nil, err
		}
		p.errs = append(p.errs, errs...)
	}
	if len(p.errs) > 0 {
		return nil, withSource(p.errs, source)
	}
	return c, nil
}

// document is what Parse decodes the file into: the Config, except that the
// timeouts are taken as whatever TOML values the file has (fileTimeouts), so
// that a bad duration becomes one problem naming its key instead of
// stopping the decoder. Its Timeouts field hides Config.Timeouts: the
// decoder, like encoding/json, fills the shallower of two fields with the
// same key.
type document struct {
	Config
	Timeouts fileTimeouts `toml:"timeouts"`
}

// stripBOM removes a byte order mark from the start of text, as the TOML
// decoder does before it parses, so that the byte offsets in its errors
// index text.
func stripBOM(text string) string {
	for _, bom := range []string{"\xef\xbb\xbf", "\xff\xfe", "\xfe\xff"} {
		if t, ok := strings.CutPrefix(text, bom); ok {
			return t
		}
	}
	return text
}

// withSource sets Source on every problem and returns them as an error.
func withSource(errs Errors, source string) error {
	for _, e := range errs {
		e.Source = source
	}
	return errs
}

// syntaxError turns a TOML parse error of text into a FieldError for the
// whole file, with the line the error is on. The line is counted from the
// error's byte offset: the parser's own line count is one too high for an
// error found at the newline that ends a line (an unclosed "[dataplane").
func syntaxError(err error, text string) *FieldError {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		line := pe.Position.Line
		if line > 0 {
			line = lineAt(text, pe.Position.Start)
		}
		return &FieldError{Line: line, Msg: "TOML syntax: " + pe.Message}
	}
	return &FieldError{Msg: strings.TrimPrefix(err.Error(), "toml: ")}
}

// lineAt returns the 1-based number of the line of text that holds the byte
// at offset (offsets outside text are taken as its nearest end).
func lineAt(text string, offset int) int {
	offset = min(max(offset, 0), len(text))
	return 1 + strings.Count(text[:offset], "\n")
}

// typeErrorText matches the decoder's type-mismatch errors, which are plain
// errors that carry the line and key only in their text.
var typeErrorText = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)

// decodeError turns an error from decoding into the schema into a FieldError
// naming the key (without array indexes: the decoder doesn't report them)
// and its line.
func decodeError(err error) *FieldError {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &FieldError{Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
	}
	if m := typeErrorText.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FieldError{Line: line, Key: m[2], Msg: m[3]}
	}
	return &FieldError{Msg: strings.TrimPrefix(err.Error(), "toml: ")}
}

// locateInArray gives a decoding error under an array of tables ("pool",
// "frontend", ...) its element index. The decoder names such keys without
// the index and takes the line from the last element that has the key, so
// the line may be wrong: each element of raw is decoded on its own to find
// the one that fails, and the line is dropped.
func locateInArray(fe *FieldError, raw map[string]any) {
	top, rest, nested := strings.Cut(fe.Key, ".")
	if !nested {
		return
	}
	var elems []map[string]any
	switch v := raw[top].(type) {
	case []map[string]any: // [[table]] headers
		elems = v
	case []any: // an inline array of tables
		for _, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				return
			}
			elems = append(elems, m)
		}
	default:
		return
	}
	field, ok := fieldByTOMLName(reflect.TypeOf(Config{}), top)
	if !ok || field.Type.Kind() != reflect.Slice {
		return
	}
	fe.Line = 0
	for i, elem := range elems {
		var b strings.Builder
		if toml.NewEncoder(&b).Encode(elem) != nil {
			return
		}
		v := reflect.New(field.Type.Elem())
		if _, err := toml.Decode(b.String(), v.Interface()); err != nil {
			e := decodeError(err)
			fe.Key = index(top, i) + "." + rest
			if e.Key != "" {
				fe.Key = index(top, i) + "." + e.Key
			}
			fe.Msg = e.Msg
			return
		}
	}
}

// unknownKeys reports every key of the file that the schema doesn't have:
// the keys the decoder left undecoded, and the keys it decoded only because
// it matches names without regard to case ("WORKERS" for "workers"). Keys
// below an unknown key are not reported again, nor are keys inside a value
// that is not a table of the schema (a timeout written as a table is a bad
// timeout, reported as such). Where the file writes arrays of tables as
// [[headers]], the key gets its array index.
func unknownKeys(md *toml.MetaData, c *Config, p *problems) {
	isUndecoded := make(map[string]bool)
	for _, k := range md.Undecoded() {
		isUndecoded[k.String()] = true
	}
	// Walk the keys in file order, counting [[table]] headers, so each
	// unknown key under one knows which element it belongs to.
	headers := make(map[string]int)
	var reported []toml.Key
	for _, k := range md.Keys() {
		if len(k) == 1 && md.Type(k...) == "ArrayHash" {
			headers[k[0]]++
		}
		if under(k, reported) {
			continue
		}
		known, inValue := schemaKey(k)
		if inValue || (known && !isUndecoded[k.String()]) {
			continue
		}
		reported = append(reported, k)
		key := k.String()
		if n := headers[k[0]]; n > 0 && len(k) > 1 && n == arrayLen(c, k[0]) {
			key = index(k[0], n-1) + "." + toml.Key(k[1:]).String()
		}
		msg := "unknown key"
		if s, sameLetters := suggest(k); sameLetters {
			msg += fmt.Sprintf(" (keys are case-sensitive: did you mean %q?)", s)
		} else if s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		p.add(key, msg)
	}
}

// schemaKey looks the key path k (without array indexes) up in the schema.
// known says whether the schema has k spelled exactly so; inValue says that
// k is inside a value of the schema that is not a table (a timeout written
// as a table), where it is part of that value's problem, not an unknown key.
func schemaKey(k toml.Key) (known, inValue bool) {
	t := reflect.TypeFor[Config]()
	for _, name := range k {
		table, ok := schemaTable(t)
		if !ok {
			return false, true
		}
		f, ok := fieldByTOMLName(table, name)
		if !ok {
			return false, false
		}
		t = f.Type
	}
	return true, false
}

// schemaTable returns the struct type a TOML table or array of tables of
// field type t decodes into, and false when t holds a value instead (a
// string, a list of strings, a Duration).
func schemaTable(t reflect.Type) (reflect.Type, bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return nil, false
	}
	return t, true
}

// under reports whether k is one of keys or below one of them.
func under(k toml.Key, keys []toml.Key) bool {
	for _, r := range keys {
		if len(k) >= len(r) && slices.Equal(k[:len(r)], r) {
			return true
		}
	}
	return false
}

// arrayLen returns the number of elements decoded into the top-level array
// of tables with TOML key name, or -1 when there is none.
func arrayLen(c *Config, name string) int {
	v := reflect.ValueOf(c).Elem()
	for i := 0; i < v.NumField(); i++ {
		if tomlName(v.Type().Field(i)) == name && v.Field(i).Kind() == reflect.Slice {
			return v.Field(i).Len()
		}
	}
	return -1
}

// suggest returns the spelling that was probably meant for the unknown key
// k, or "" when nothing known is close: the first name of k that the schema
// doesn't have is replaced by the known key of its table closest in
// spelling. When that is the last name of k, the suggestion is that key
// alone ("workers"); otherwise it is k's whole path with the name replaced
// ("timeouts.udp" for "Timeouts.udp"). sameLetters says the replacement
// differs from the name only in case.
func suggest(k toml.Key) (key string, sameLetters bool) {
	t := reflect.TypeFor[Config]()
	for i, name := range k {
		table, ok := schemaTable(t)
		if !ok {
			return "", false
		}
		if f, ok := fieldByTOMLName(table, name); ok {
			t = f.Type
			continue
		}
		best, sameLetters := closestKey(table, name)
		if best == "" || i == len(k)-1 {
			return best, sameLetters
		}
		path := slices.Clone(k)
		path[i] = best
		return path.String(), sameLetters
	}
	return "", false
}

// closestKey returns the key of struct type table closest in spelling to
// name, or "" when none is within two edits; sameLetters says it differs
// from name only in case.
func closestKey(table reflect.Type, name string) (key string, sameLetters bool) {
	best, bestDist := "", 3 // suggest only within two edits
	for i := 0; i < table.NumField(); i++ {
		known := tomlName(table.Field(i))
		if known == "" {
			continue
		}
		if strings.EqualFold(name, known) {
			return known, true
		}
		if d := editDistance(strings.ToLower(name), known); d < bestDist {
			best, bestDist = known, d
		}
	}
	return best, false
}

// fieldByTOMLName finds the field of struct type t with TOML key name.
func fieldByTOMLName(t reflect.Type, name string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := 0; i < t.NumField(); i++ {
		if tomlName(t.Field(i)) == name {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// tomlName returns the TOML key of a schema field, or "" for fields that
// have no toml tag.
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}

// editDistance returns the Levenshtein distance between a and b, counted in
// bytes (keys are ASCII).
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
