package fanout

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/job"
)

// event is what a CloudEvent is made from.
type event struct {
	header  nats.Header
	data    []byte
	subject string
	stream  string
	seq     uint64
	stored  time.Time
}

// structuredCloudEvent returns ev as a structured-mode CloudEvent (JSON,
// specversion 1.0):
//   - a structured CloudEvent (Content-Type application/cloudevents+json,
//     or a JSON object with a specversion) is passed as it is;
//   - a binary-mode CloudEvent (ce-* headers) gets its attributes from the
//     headers and its data from the body;
//   - anything else is wrapped: id <stream>-<seq>, source and type from
//     the route (type defaults to the subject), time when the event was
//     stored, so a redelivered event makes the same CloudEvent.
//
// JSON data goes in data, text in data as a string, anything else in
// data_base64.
func structuredCloudEvent(ev event, source, typ string) []byte {
	ct := job.Lookup(ev.header, job.HeaderContentType)
	if isStructured(ct, ev.data) {
		return ev.data
	}
	attrs := map[string]any{}
	if binary := ceHeaders(ev.header); len(binary) > 0 {
		for k, v := range binary {
			attrs[k] = v
		}
	}
	def := func(k, v string) {
		if s, _ := attrs[k].(string); s == "" {
			attrs[k] = v
		}
	}
	def("specversion", "1.0")
	def("id", ev.stream+"-"+strconv.FormatUint(ev.seq, 10))
	def("source", source)
	if typ == "" {
		typ = ev.subject
	}
	def("type", typ)
	if !ev.stored.IsZero() {
		def("time", ev.stored.UTC().Format(time.RFC3339Nano))
	}
	if len(ev.data) > 0 {
		switch {
		case (ct == "" || isJSONType(ct)) && json.Valid(ev.data):
			if ct == "" {
				ct = "application/json"
			}
			attrs["data"] = json.RawMessage(ev.data)
		case isTextType(ct) && utf8.Valid(ev.data):
			attrs["data"] = string(ev.data)
		default:
			if ct == "" {
				ct = "application/octet-stream"
			}
			attrs["data_base64"] = base64.StdEncoding.EncodeToString(ev.data)
		}
	}
	if ct != "" {
		def("datacontenttype", ct)
	}
	out, err := json.Marshal(attrs)
	if err != nil { // only strings and valid JSON go in
		panic("fanout: cloudevent: " + err.Error())
	}
	return out
}

// isStructured reports a structured-mode CloudEvent: declared by its
// content type or recognisable by a specversion, and valid JSON either way.
func isStructured(ct string, data []byte) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	declared := mt == CloudEventCT
	if !declared && (len(data) == 0 || !bytes.Contains(data, []byte(`"specversion"`))) {
		return false
	}
	var probe struct {
		SpecVersion json.RawMessage `json:"specversion"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return false
	}
	var v string
	return json.Unmarshal(probe.SpecVersion, &v) == nil && v != ""
}

// ceHeaders returns the CloudEvent attributes of a binary-mode event
// (ce-<name> headers), or nil when it has no ce-specversion.
func ceHeaders(h nats.Header) map[string]string {
	if job.Lookup(h, "ce-specversion") == "" {
		return nil
	}
	out := map[string]string{}
	for k, vs := range h {
		if len(vs) == 0 || len(k) <= 3 || !strings.EqualFold(k[:3], "ce-") {
			continue
		}
		name := strings.ToLower(k[3:])
		if !validAttr(name) {
			continue
		}
		out[name] = vs[0]
	}
	return out
}

// validAttr: CloudEvent attribute names are lower-case letters and digits.
func validAttr(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != "" && s != "data" && s != "data_base64"
}

func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

func isTextType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && strings.HasPrefix(mt, "text/")
}
