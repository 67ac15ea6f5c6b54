package secret

import (
	"strings"
)

// Redact returns the connection string s with its password positions masked:
// user, host, port, database and the other parameters stay readable. What
// [Parse] accepts is masked exactly (see [ConnString.Redacted]). Anything else
// is masked on a best-effort basis that errs towards hiding too much: in a
// URL everything between the first ":" and the last "@" (the whole user info
// when it does not look like a plain user name), a port that is not a number,
// and the rest of the string from a password or sslpassword parameter on; in
// a keyword/value string a password's value and the words without "=" after
// it, or the rest of the string from an unterminated quote on.
func Redact(s string) string {
	out, _ := redact(s)
	return out
}

// redact is Redact that also tells whether s was masked exactly.
func redact(s string) (string, bool) {
	spans, exact := redactSpans(s)
	return cut(s, spans, Mask), exact
}

// redactSpans returns the spans of s that Redact masks, and whether Parse
// accepted s.
func redactSpans(s string) ([]span, bool) {
	if off, ok := anyScheme(s); ok {
		if _, pg := urlScheme(s); !pg {
			// Not a URL pgx reads, but a URL all the same (POSTGRES://,
			// mysql://): never read it as keyword/value.
			return urlBestEffort(s, off), false
		}
	}
	if c, err := Parse(s); err == nil {
		return c.mask, true
	}
	if off, ok := anyScheme(s); ok {
		return urlBestEffort(s, off), false
	}
	return kvBestEffort(s), false
}

// anyScheme returns the length of a scheme:// prefix of s, any scheme.
func anyScheme(s string) (int, bool) {
	i := strings.Index(s, "://")
	if i < 1 {
		return 0, false
	}
	for j := range i {
		c := s[j]
		letter := c|0x20 >= 'a' && c|0x20 <= 'z'
		other := c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
		if !letter && (j == 0 || !other) {
			return 0, false
		}
	}
	return i + 3, true
}

// urlBestEffort masks a URL that Parse rejects: s[off:] follows the scheme.
func urlBestEffort(s string, off int) []span {
	p := s[off:]
	var spans []span
	tail := off
	if at := strings.LastIndexByte(p, '@'); at >= 0 {
		info := p[:at]
		user, _, hasPW := strings.Cut(info, ":")
		switch {
		case !plainUser(user):
			spans = append(spans, span{off, off + at})
		case hasPW:
			spans = append(spans, span{off + len(user) + 1, off + at})
		}
		tail = off + at + 1
	}
	rest := s[tail:]
	q := uriQueryStart(rest)
	if q < 0 {
		return append(spans, oddPorts(rest, tail)...)
	}
	spans = append(spans, oddPorts(rest[:q], tail)...)
	at := tail + q + 1
	for at < len(s) {
		key, _, found, end := queryParam(s, at)
		if found && isPasswordKey(lenientDecode(key)) {
			// Unencoded "&" or "=" may continue the password: hide the rest.
			return append(spans, span{at + len(key) + 1, len(s)})
		}
		at = end + 1
	}
	return spans
}

// plainUser reports whether a user info's text before its ":" reads as a
// user name and nothing else.
func plainUser(u string) bool {
	return !strings.ContainsFunc(u, func(r rune) bool {
		return strings.ContainsRune("?=&/#'\"`\\", r) || r < 0x80 && isSpace(byte(r))
	})
}

// isPasswordKey reports whether a keyword names a password, in any case.
func isPasswordKey(k string) bool {
	k = asciiLower(strings.TrimSpace(k))
	return k == "password" || k == "sslpassword"
}

// asciiLower lower-cases A-Z only, so that byte offsets stay valid.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// kvBestEffort masks a keyword/value string that Parse rejects: from the
// value of its first password or sslpassword keyword to the end. Read the
// way pgx reads it, that keyword may even be the value of another
// (user= password= …); and a password with unquoted spaces or quotes may
// run on into what looks like more pairs.
func kvBestEffort(s string) []span {
	lower := asciiLower(s)
	for at := 0; ; {
		_, end, ok := nextPasswordWord(lower, at)
		if !ok {
			return nil
		}
		at = end
		j := skipSpace(s, end)
		if j < len(s) && s[j] == '=' {
			j = skipSpace(s, j+1)
			if j < len(s) && s[j] == '\'' {
				j++
			}
			return []span{{j, len(s)}}
		}
	}
}

// nextPasswordWord finds in lower, from at, the next word password or
// sslpassword (not part of a longer word) and returns where it starts and
// ends.
func nextPasswordWord(lower string, at int) (start, end int, ok bool) {
	for {
		i := strings.Index(lower[at:], "password")
		if i < 0 {
			return 0, 0, false
		}
		start, end = at+i, at+i+len("password")
		at = end
		if start >= 3 && lower[start-3:start] == "ssl" {
			start -= 3
		}
		if start == 0 || !isWordByte(lower[start-1]) {
			return start, end, true
		}
	}
}

// Text masks the password positions of what free text quotes: every
// postgres:// or postgresql:// URL in it, masked as [Redact] does (a URL ends
// at a line break, a space, a quote, a backtick, < or >, except in its user
// info, in a password parameter and for spaces next to : @ / , ? & =); every
// password= or sslpassword= value, quoted or not, in any case; every SQL
// PASSWORD '…' literal. The rest is left as it is, whatever it contains. A
// URL broken by a space or a quote after its user info is masked only up to
// there: free text cannot tell where it would have ended.
func Text(s string) string { return cut(s, textSpans(s), Mask) }

// textSpans returns the spans of s that Text masks.
func textSpans(s string) []span {
	lower := asciiLower(s)
	var spans, urls []span
	for at := 0; ; {
		i := strings.Index(lower[at:], "postgres")
		if i < 0 {
			break
		}
		start := at + i
		rest := lower[start:]
		if !strings.HasPrefix(rest, "postgres://") && !strings.HasPrefix(rest, "postgresql://") {
			at = start + 1
			continue
		}
		end := urlEnd(s, start, len("postgres://"))
		if strings.HasPrefix(rest, "postgresql://") {
			end = urlEnd(s, start, len("postgresql://"))
		}
		tok, _ := redactSpans(s[start:end])
		for _, sp := range tok {
			spans = append(spans, span{start + sp.start, start + sp.end})
		}
		urls = append(urls, span{start, end})
		at = end
	}
	inURL := func(i int) bool {
		for _, u := range urls {
			if i >= u.start && i < u.end {
				return true
			}
		}
		return false
	}
	for at := 0; ; {
		start, end, ok := nextPasswordWord(lower, at)
		if !ok {
			break
		}
		at = end
		if inURL(start) {
			continue
		}
		j := skipSpace(s, at)
		switch {
		case j < len(s) && s[j] == '=':
			// password=value, password = 'value'
			if sp, ok := kvValue(s, skipSpace(s, j+1)); ok {
				spans = append(spans, sp)
				at = sp.end
			}
		case j > at && j < len(s) && s[j] == '\'':
			// SQL: PASSWORD 'literal' ('' inside it)
			k := j + 1
			for k < len(s) {
				if s[k] == '\'' {
					if k+1 < len(s) && s[k+1] == '\'' {
						k += 2
						continue
					}
					break
				}
				k++
			}
			spans = append(spans, span{j + 1, k})
			at = k
		}
	}
	return spans
}

// urlEnd returns where the URL at s[start:] (its scheme off bytes long)
// ends in free text: at a line break; at a quote, a backtick, < or >, unless
// it sits in the user info or in a password parameter; at spaces, unless
// they are next to one of : @ / , ? & = (pgx drops spaces around a URL's
// parts: postgres://u: pw @h). The user info is what comes before the first
// "@" when no "/" or other spaces come first.
func urlEnd(s string, start, off int) int {
	head := start + off
	line := s[head:]
	if i := strings.IndexAny(line, "\n\r\v\f"); i >= 0 {
		line = line[:i]
	}
	from := head
	if u := strings.IndexAny(line, "@/"); u >= 0 && line[u] == '@' && !separated(line[:u]) {
		from = head + u + 1
	}
	for k := from; k < len(s); k++ {
		switch c := s[k]; {
		case c == '\n' || c == '\r' || c == '\v' || c == '\f':
			return k
		case c == ' ' || c == '\t':
			j := k
			for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
				j++
			}
			if !joined(s[k-1]) && (j == len(s) || !joined(s[j])) {
				return k
			}
			k = j - 1
		case strings.IndexByte("\"'`<>", c) >= 0:
			if !inPasswordParam(s[head:k]) {
				return k
			}
		}
	}
	return len(s)
}

// joined reports whether spaces next to c may sit inside a URL.
func joined(c byte) bool { return strings.IndexByte(":@/,?&=", c) >= 0 }

// separated reports whether the user info candidate u (between "://" and
// "@") has spaces that are not next to one of : @ / , ? & =.
func separated(u string) bool {
	for k := 0; k < len(u); k++ {
		if u[k] != ' ' && u[k] != '\t' {
			continue
		}
		j := k
		for j < len(u) && (u[j] == ' ' || u[j] == '\t') {
			j++
		}
		if (k > 0 && !joined(u[k-1])) && (j < len(u) && !joined(u[j])) {
			return true
		}
		k = j - 1
	}
	return false
}

// inPasswordParam reports whether url (a URL's text after its scheme, so
// far) ends inside the value of a password or sslpassword parameter.
func inPasswordParam(url string) bool {
	if !strings.Contains(url, "?") {
		return false
	}
	key, _, found := strings.Cut(url[strings.LastIndexAny(url, "?&")+1:], "=")
	return found && isPasswordKey(lenientDecode(key))
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
}

// kvValue returns the span of the keyword/value value at s[j:]: inside its
// quotes (to the end of s when unterminated) or up to a space.
func kvValue(s string, j int) (span, bool) {
	if j >= len(s) {
		return span{}, false
	}
	if s[j] == '\'' {
		k := j + 1
		for k < len(s) && s[k] != '\'' {
			if s[k] == '\\' {
				k++
			}
			k++
		}
		return span{j + 1, min(k, len(s))}, true
	}
	k := j
	for k < len(s) && !isSpace(s[k]) {
		if s[k] == '\\' {
			k++
		}
		k++
	}
	return span{j, min(k, len(s))}, true
}
