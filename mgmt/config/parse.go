package config

import (
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

// Parse decodes data as a natgw TOML configuration, applies defaults
// (ApplyDefaults) and validates it (Validate). source names the data in
// error messages (usually the file name; it may be empty).
//
// Parsing is strict: a key the schema doesn't know is an error naming it.
// On failure the error is Errors, listing every problem, each with Source
// set. Two kinds of problem stop the TOML decoder and are reported alone,
// because nothing after them was decoded: a syntax error (reported with its
// line) and a value of the wrong type or a bad duration (reported with its
// key and line). Everything else, unknown keys included, is reported
// together.
func Parse(data []byte, source string) (*Config, error) {
	text := string(data)
	// A first pass into a plain map tells syntax errors, which concern the
	// file, from decoding errors, which concern one key.
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		return nil, withSource(Errors{syntaxError(err)}, source)
	}
	var c Config
	md, err := toml.Decode(text, &c)
	if err != nil {
		fe := decodeError(err)
		locateInArray(fe, raw)
		return nil, withSource(Errors{fe}, source)
	}
	var p problems
	unknownKeys(&md, &c, &p)
	c.ApplyDefaults()
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
	return &c, nil
}

// withSource sets Source on every problem and returns them as an error.
func withSource(errs Errors, source string) error {
	for _, e := range errs {
		e.Source = source
	}
	return errs
}

// syntaxError turns a TOML parse error into a FieldError for the whole file,
// with the line the parser stopped at.
func syntaxError(err error) *FieldError {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &FieldError{Line: pe.Position.Line, Msg: "TOML syntax: " + pe.Message}
	}
	return &FieldError{Msg: strings.TrimPrefix(err.Error(), "toml: ")}
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

// unknownKeys reports every key of the file that the schema doesn't have.
// Keys below an unknown table are not reported again. Where the file writes
// arrays of tables as [[headers]], the key gets its array index.
func unknownKeys(md *toml.MetaData, c *Config, p *problems) {
	undecoded := md.Undecoded()
	if len(undecoded) == 0 {
		return
	}
	isUndecoded := make(map[string]bool, len(undecoded))
	for _, k := range undecoded {
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
		if !isUndecoded[k.String()] || under(k, reported) {
			continue
		}
		reported = append(reported, k)
		key := k.String()
		if n := headers[k[0]]; n > 0 && len(k) > 1 && n == arrayLen(c, k[0]) {
			key = index(k[0], n-1) + "." + toml.Key(k[1:]).String()
		}
		msg := "unknown key"
		if s := suggest(k); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		p.add(key, msg)
	}
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

// suggest returns the known key of the same table closest in spelling to
// the unknown key k, or "" when none is close.
func suggest(k toml.Key) string {
	t := reflect.TypeOf(Config{})
	for _, name := range k[:len(k)-1] {
		f, ok := fieldByTOMLName(t, name)
		if !ok {
			return ""
		}
		t = f.Type
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return ""
		}
	}
	last := k[len(k)-1]
	best, bestDist := "", 3 // suggest only within two edits
	for i := 0; i < t.NumField(); i++ {
		name := tomlName(t.Field(i))
		if name == "" {
			continue
		}
		if d := editDistance(strings.ToLower(last), name); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
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
