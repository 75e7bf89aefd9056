package inbox

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"
	"github.com/jhillyerd/enmime/v2"
	"github.com/jhillyerd/enmime/v2/mediatype"
)

// Bounds of ParseEmail. MIME parsing costs grow with the nesting depth times
// the message size, and faster than linearly with the number of parts, so a
// message past these bounds is not handed to the MIME parser: it is kept raw,
// its top-level header is still read, and its ParseError names the bound.
const (
	// MaxEmailHeaders is the number of top-level header fields listed.
	MaxEmailHeaders = 1000
	// MaxMIMEParts bounds the lines that could start a MIME part (lines
	// holding "--" and a declared boundary).
	MaxMIMEParts = 1000
	// MaxMIMEContainers bounds the multipart containers, hence the nesting.
	MaxMIMEContainers = 100
	// MaxMIMEWork bounds the multipart containers times the message size, in
	// bytes: a 25 MiB message may hold 5 containers, a 1 MiB one 100. At the
	// bound, parsing takes about a second.
	MaxMIMEWork = 128 << 20
)

// ParseEmail parses a raw message (RFC 5322, MIME). It never fails: a
// message it cannot parse, in whole or in part, still yields an Email with
// what could be read and ParseError saying what went wrong. Every string in
// the result is valid UTF-8; one-line fields (from, to, subject, date,
// attachment names and types) hold no control characters, so a CR or LF
// smuggled into a header through an encoded word comes out as a space.
// Attachments are listed in MIME tree order: the n-th is the one served by
// GET /api/v1/bins/{bin}/captures/{id}/attachments/{n}.
func ParseEmail(raw []byte) *Email {
	e := &Email{To: []string{}, Attachments: []Attachment{}}
	var problems []string
	headers, more, body, wellFormed := parseEmailHeaders(raw)
	if more {
		problems = append(problems, fmt.Sprintf("more than %d header fields: only the first %d are listed", MaxEmailHeaders, MaxEmailHeaders))
	}
	fillFromHeaders(e, headers)
	if wellFormed && !more {
		if text, ok := simpleText(headers, body); ok {
			e.Text = text
			return e
		}
	}

	if err := checkMIME(raw); err != nil {
		e.ParseError = cleanLine(strings.Join(append(problems, err.Error()), "; "))
		return e
	}
	env, err := emailParser(false).ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		e.ParseError = cleanLine(strings.Join(append(problems, "mime: "+err.Error()), "; "))
		return e
	}
	e.Text = strings.ToValidUTF8(env.Text, "\uFFFD")
	e.HTML = strings.ToValidUTF8(env.HTML, "\uFFFD")
	if root := textBody(env); root != nil {
		e.Text = strings.ToValidUTF8(string(root.Content), "\uFFFD")
	}
	for _, pe := range env.Errors {
		if pe.Severe && len(problems) < 8 {
			problems = append(problems, cleanLine("mime: "+strings.ToLower(pe.Name)+": "+pe.Detail))
		}
	}
	atts := attachments{raw: raw, parts: attachmentParts(env)}
	for i, p := range atts.parts {
		e.Attachments = append(e.Attachments, Attachment{
			Name: cleanLine(p.FileName),
			Type: cleanLine(partType(p)),
			Size: int64(len(atts.data(i))),
		})
	}
	e.ParseError = cleanLine(strings.Join(problems, "; "))
	return e
}

// simpleText returns the text of a message that needs no MIME parser: a
// single part of a textual type other than HTML, in UTF-8 or US-ASCII,
// with no disposition or file name (so not an attachment). ok is false for
// any other message, which goes to the MIME parser. It gives the same
// result the parser would, for a fraction of its cost.
func simpleText(hs []Header, body []byte) (text string, ok bool) {
	var ctype, cte string
	seen := 0
	for _, h := range hs {
		switch {
		case strings.EqualFold(h[0], "Content-Type"):
			ctype, seen = h[1], seen+1
		case strings.EqualFold(h[0], "Content-Transfer-Encoding"):
			cte = strings.ToLower(strings.TrimSpace(h[1]))
		case strings.EqualFold(h[0], "Content-Disposition"):
			return "", false
		}
	}
	if seen > 1 {
		return "", false
	}
	mt, charset := "text/plain", ""
	if seen == 1 {
		t, params, err := mime.ParseMediaType(ctype)
		if err != nil || params["name"] != "" || params["boundary"] != "" {
			return "", false
		}
		mt, charset = t, strings.ToLower(params["charset"])
	}
	if !textualType(mt) {
		return "", false
	}
	switch charset {
	case "", "utf-8", "utf8", "us-ascii":
	default:
		return "", false
	}
	switch cte {
	case "", "7bit", "8bit", "binary":
	case "base64":
		body = decodeBase64(body)
	case "quoted-printable":
		body = decodeQP(body)
	default:
		return "", false
	}
	if charset == "" && !utf8.Valid(body) { // the parser would guess the charset
		return "", false
	}
	return strings.ToValidUTF8(string(body), "\uFFFD"), true
}

// textualType reports whether a media type is text other than HTML: plain
// text, JSON, XML and the like.
func textualType(t string) bool {
	t = strings.ToLower(t)
	switch {
	case t == "text/html":
		return false
	case strings.HasPrefix(t, "text/"), t == "application/json", t == "application/xml":
		return true
	}
	return strings.HasPrefix(t, "application/") && (strings.HasSuffix(t, "+json") || strings.HasSuffix(t, "+xml"))
}

// ParseEmailHeaders returns the top-level header fields of a raw message in
// the order received, unfolded, with their values as sent (encoded words are
// not decoded), at most MaxEmailHeaders of them. Invalid UTF-8 is replaced
// and a stray CR becomes a space.
func ParseEmailHeaders(raw []byte) []Header {
	hs, _, _, _ := parseEmailHeaders(raw)
	return hs
}

// EmailAttachment returns the n-th attachment of a raw message (counting
// from 0, as Email.Attachments does) and its bytes, decoded from their
// transfer encoding; ErrNotFound when there is no such attachment.
func EmailAttachment(raw []byte, n int) (Attachment, []byte, error) {
	if n < 0 {
		return Attachment{}, nil, errorf(ErrNotFound, "attachment %d: no such attachment", n)
	}
	if err := checkMIME(raw); err != nil {
		return Attachment{}, nil, errorf(ErrNotFound, "attachment %d: the message was not parsed (%v)", n, err)
	}
	env, err := emailParser(false).ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		return Attachment{}, nil, errorf(ErrNotFound, "attachment %d: the message was not parsed (%v)", n, err)
	}
	atts := attachments{raw: raw, parts: attachmentParts(env)}
	if n >= len(atts.parts) {
		return Attachment{}, nil, errorf(ErrNotFound, "attachment %d: the message has %d attachments", n, len(atts.parts))
	}
	p, data := atts.parts[n], atts.data(n)
	return Attachment{Name: cleanLine(p.FileName), Type: cleanLine(partType(p)), Size: int64(len(data))}, data, nil
}

// attachments are the attachment parts of a message, whose bytes, as
// served for download, are their content decoded from its transfer
// encoding. The parser also converts text parts to UTF-8: those are taken
// again from the raw message, so that they come back in their own charset.
type attachments struct {
	raw      []byte
	parts    []*enmime.Part
	rawParts []*enmime.Part // parsed on first need
	rawDone  bool
}

func (a *attachments) data(i int) []byte {
	p := a.parts[i]
	if !strings.HasPrefix(partType(p), "text/") {
		return p.Content
	}
	if !a.rawDone {
		a.rawDone = true
		if rp, err := rawAttachmentParts(a.raw); err == nil && len(rp) == len(a.parts) {
			a.rawParts = rp
		}
	}
	if a.rawParts == nil {
		return p.Content
	}
	return decodeTransfer(a.rawParts[i])
}

// textBody returns the root of a message that is a single part of a
// textual type other than text/plain and text/html (such as a JSON
// callback), not marked as an attachment: its content is the message's
// text rather than an attachment. nil otherwise.
func textBody(env *enmime.Envelope) *enmime.Part {
	root := env.Root
	if root == nil || root.FirstChild != nil || env.Text != "" || env.HTML != "" ||
		strings.EqualFold(root.Disposition, "attachment") || root.FileName != "" {
		return nil
	}
	if textualType(partType(root)) {
		return root
	}
	return nil
}

func emailParser(rawContent bool) *enmime.Parser {
	return enmime.NewParser(
		enmime.DisableTextConversion(true),     // Text is the text part, never made from the HTML
		enmime.DisableCharacterDetection(true), // trust a declared charset
		enmime.SkipMalformedParts(true),
		enmime.MaxStoredPartErrors(16),
		enmime.RawContent(rawContent),
	)
}

// rawAttachmentParts parses raw keeping every part's content as sent
// (transfer encoding included) and returns its attachments.
func rawAttachmentParts(raw []byte) ([]*enmime.Part, error) {
	env, err := emailParser(true).ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return attachmentParts(env), nil
}

// attachmentParts lists the attachments, inline parts and other non-body
// parts of env, once each, in MIME tree order (depth first).
func attachmentParts(env *enmime.Envelope) []*enmime.Part {
	want := make(map[*enmime.Part]bool, len(env.Attachments)+len(env.Inlines)+len(env.OtherParts))
	for _, list := range [][]*enmime.Part{env.Attachments, env.Inlines, env.OtherParts} {
		for _, p := range list {
			want[p] = true
		}
	}
	if len(want) == 0 || env.Root == nil || textBody(env) != nil {
		return nil
	}
	var out []*enmime.Part
	// An explicit stack: the tree is bounded by checkMIME, but recursion is
	// not needed.
	stack := []*enmime.Part{env.Root}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if want[p] {
			out = append(out, p)
		}
		var kids []*enmime.Part
		for c := p.FirstChild; c != nil; c = c.NextSibling {
			kids = append(kids, c)
		}
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, kids[i])
		}
	}
	return out
}

func partType(p *enmime.Part) string {
	if p.ContentType == "" {
		return "application/octet-stream"
	}
	return strings.ToLower(p.ContentType)
}

// decodeTransfer undoes a part's Content-Transfer-Encoding on its raw
// content. It is lenient, as mail readers are: bytes that are not base64
// are skipped, and a malformed quoted-printable escape is kept as is.
func decodeTransfer(p *enmime.Part) []byte {
	switch strings.ToLower(strings.TrimSpace(p.Header.Get("Content-Transfer-Encoding"))) {
	case "base64":
		return decodeBase64(p.Content)
	case "quoted-printable":
		return decodeQP(p.Content)
	}
	return p.Content
}

func decodeBase64(in []byte) []byte {
	clean := make([]byte, 0, len(in))
	for _, c := range in {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			clean = append(clean, c)
		}
	}
	if len(clean)%4 == 1 { // a lone trailing character carries no whole byte
		clean = clean[:len(clean)-1]
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, _ := base64.RawStdEncoding.Decode(out, clean) // every byte is in the alphabet
	return out[:n]
}

func decodeQP(in []byte) []byte {
	out := make([]byte, 0, len(in))
	for len(in) > 0 {
		line, rest, found := bytes.Cut(in, []byte("\n"))
		in = rest
		eol := ""
		if found {
			eol = "\n"
			if l := len(line); l > 0 && line[l-1] == '\r' {
				line, eol = line[:l-1], "\r\n"
			}
		}
		// Trailing white space was added in transport (RFC 2045, 6.7).
		line = bytes.TrimRight(line, " \t")
		if l := len(line); l > 0 && line[l-1] == '=' { // soft line break
			line, eol = line[:l-1], ""
		}
		for i := 0; i < len(line); i++ {
			c := line[i]
			if c == '=' && i+2 < len(line) && isHex(line[i+1]) && isHex(line[i+2]) {
				out = append(out, unhex(line[i+1])<<4|unhex(line[i+2]))
				i += 2
				continue
			}
			out = append(out, c)
		}
		out = append(out, eol...)
	}
	return out
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// parseEmailHeaders reads the header block of raw (up to the first empty
// line, or all of raw when there is none). It reports whether fields were
// left out past MaxEmailHeaders, returns the body after the block, and
// whether the block is plainly well formed: every line a field or the
// continuation of one, and an empty line after it.
func parseEmailHeaders(raw []byte) (hs []Header, more bool, body []byte, wellFormed bool) {
	rest := raw
	first := true
	wellFormed = true
	ended := false
	for len(rest) > 0 {
		line, next, _ := bytes.Cut(rest, []byte("\n"))
		rest = next
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			body, ended = rest, true
			break
		}
		if first && bytes.HasPrefix(line, []byte("From ")) { // an mbox separator
			first, wellFormed = false, false
			continue
		}
		first = false
		if line[0] == ' ' || line[0] == '\t' { // folded: continues the last field
			if len(hs) > 0 && !more {
				hs[len(hs)-1][1] += cleanHeader(line)
			} else if len(hs) == 0 {
				wellFormed = false
			}
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !fieldName(name) {
			wellFormed = false
			name = bytes.TrimRight(name, " \t")
			if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
				continue // not a header field
			}
		}
		if len(hs) == MaxEmailHeaders {
			more = true
			continue
		}
		hs = append(hs, Header{cleanHeader(name), cleanHeader(bytes.TrimLeft(value, " \t"))})
	}
	if hs == nil {
		hs = []Header{}
	}
	return hs, more, body, wellFormed && ended
}

// fieldName reports whether b is a field name of RFC 5322: printable
// ASCII but the colon.
func fieldName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

func cleanHeader(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if strings.ContainsAny(s, "\r\x00") {
		s = strings.NewReplacer("\r", " ", "\x00", " ").Replace(s)
	}
	return s
}

// cleanLine makes s a one-line display string: valid UTF-8 without control
// characters.
func cleanLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	clean := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s))
}

// fillFromHeaders sets From, To, Subject and Date from the first fields of
// those names, decoding RFC 2047 words.
func fillFromHeaders(e *Email, hs []Header) {
	get := func(name string) (string, bool) {
		for _, h := range hs {
			if strings.EqualFold(h[0], name) {
				return h[1], true
			}
		}
		return "", false
	}
	if v, ok := get("From"); ok {
		if addrs := addresses(v); len(addrs) > 0 {
			e.From = strings.Join(addrs, ", ")
		} else {
			e.From = cleanLine(enmime.DecodeRFC2047(v))
		}
	}
	for _, h := range hs {
		if strings.EqualFold(h[0], "To") {
			if addrs := addresses(h[1]); len(addrs) > 0 {
				e.To = append(e.To, addrs...)
			} else if v := cleanLine(enmime.DecodeRFC2047(h[1])); v != "" {
				e.To = append(e.To, v)
			}
		}
	}
	if v, ok := get("Subject"); ok {
		e.Subject = cleanLine(enmime.DecodeRFC2047(v))
	}
	if v, ok := get("Date"); ok {
		// The usual form first: mail.ParseDate tries many, at a cost.
		if t, err := time.Parse("Mon, 2 Jan 2006 15:04:05 -0700", strings.TrimSpace(v)); err == nil {
			e.Date = t.Format(time.RFC3339)
		} else if t, err := mail.ParseDate(v); err == nil {
			e.Date = t.Format(time.RFC3339)
		} else {
			e.Date = cleanLine(v)
		}
	}
}

// addresses formats an address list as "Name <addr>" (or "addr"), names
// decoded, nil when it does not parse.
func addresses(v string) []string {
	list, err := enmime.ParseAddressList(v)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		addr, name := cleanLine(a.Address), cleanLine(a.Name)
		if name != "" {
			out = append(out, name+" <"+addr+">")
		} else if addr != "" {
			out = append(out, addr)
		}
	}
	return out
}

// errMIMEBounds is the kind of the errors of checkMIME.
var errMIMEBounds = errors.New("mime structure over the parsing bounds")

// checkMIME bounds what the MIME parser would do with raw, in one pass and
// without trusting the parser's view of the structure: every multipart part
// starts at a line holding "--" and a boundary declared in some
// Content-Type field, and every container is such a field. Counting those
// over the whole message over-estimates both.
func checkMIME(raw []byte) error {
	var boundaries [][]byte
	containers := 0
	anyDashes := false // a multipart type without a boundary: any "--" line may count
	for rest := raw; len(rest) > 0; {
		line, next, _ := bytes.Cut(rest, []byte("\n"))
		rest = next
		if len(line) < len("content-type:") || !asciiPrefixFold(line, "content-type") {
			continue
		}
		after := bytes.TrimLeft(line[len("content-type"):], " \t")
		if len(after) == 0 || after[0] != ':' {
			continue
		}
		// The field value, with its continuation lines.
		value := append([]byte(nil), after[1:]...)
		for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			cont, next, _ := bytes.Cut(rest, []byte("\n"))
			value = append(value, cont...)
			rest = next
			if len(value) > 64<<10 {
				break
			}
		}
		mtype, params, _, err := mediatype.Parse(string(bytes.TrimSpace(value)))
		if err != nil || !strings.HasPrefix(strings.ToLower(mtype), "multipart/") {
			continue
		}
		containers++
		if containers > MaxMIMEContainers {
			return fmt.Errorf("%w: more than %d multipart containers; the message is kept raw", errMIMEBounds, MaxMIMEContainers)
		}
		if int64(containers)*int64(len(raw)) > MaxMIMEWork {
			return fmt.Errorf("%w: %d multipart containers in %d bytes; the message is kept raw", errMIMEBounds, containers, len(raw))
		}
		if b := params["boundary"]; b != "" {
			boundaries = append(boundaries, []byte("--"+b))
		} else {
			anyDashes = true
		}
	}
	if containers == 0 {
		return nil
	}
	starts := 0
	for rest := raw; len(rest) > 0; {
		line, next, _ := bytes.Cut(rest, []byte("\n"))
		rest = next
		if !bytes.Contains(line, []byte("--")) {
			continue
		}
		hit := anyDashes
		for _, b := range boundaries {
			if hit {
				break
			}
			hit = bytes.Contains(line, b)
		}
		if hit {
			if starts++; starts > MaxMIMEParts {
				return fmt.Errorf("%w: more than %d MIME parts; the message is kept raw", errMIMEBounds, MaxMIMEParts)
			}
		}
	}
	return nil
}

func asciiPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

// downloadName is a file name for an attachment that is safe to give a
// browser or a shell: its last path element, without control characters,
// quotes or characters that file systems refuse, not hidden, at most 200
// bytes; "attachment-N" when nothing is left.
func downloadName(name string, n int) string {
	name = cleanLine(name)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		switch r {
		case '<', '>', ':', '"', '|', '?', '*':
			return '_'
		}
		return r
	}, name)
	name = strings.Trim(name, " .")
	if len(name) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = strings.TrimRight(name[:cut], " .")
	}
	if name == "" {
		return fmt.Sprintf("attachment-%d", n+1)
	}
	return name
}

// attachment serves the n-th attachment of an e-mail capture as a
// download, never as a page of ours.
func (h *Handler) attachment(w http.ResponseWriter, r *http.Request) {
	c, err := h.findCapture(r)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	v := mux.Vars(r)["n"]
	n, err := strconv.Atoi(v)
	if err != nil {
		WriteError(w, h.Logger, errorf(ErrInvalid, "attachment number %q is not an integer", v))
		return
	}
	if c.Kind != KindEmail {
		WriteError(w, h.Logger, errorf(ErrNotFound, "capture %d is not an e-mail: it has no attachments", c.ID))
		return
	}
	a, data, err := EmailAttachment(c.Body, n)
	if err != nil {
		WriteError(w, h.Logger, fmt.Errorf("capture %d: %w", c.ID, err))
		return
	}
	ctype := "application/octet-stream"
	if mt, _, err := mime.ParseMediaType(a.Type); err == nil && !strings.HasPrefix(mt, "multipart/") {
		ctype = mt
	}
	disp := mime.FormatMediaType("attachment", map[string]string{"filename": downloadName(a.Name, n)})
	if disp == "" {
		disp = "attachment"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", disp)
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}
