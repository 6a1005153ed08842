package main

// slugify is flux-operator's: gosimple/slug v1.15.0's Make (language "en") with MaxLength
// 63 and EnableSmartTruncate. gosimple/slug is not packaged by Debian, so this follows its
// steps over rainycape/unidecode, which gosimple/unidecode was forked from (the two may
// transliterate a rare character differently).

import (
	"regexp"
	"strings"

	"github.com/rainycape/unidecode"
)

const slugMaxLength = 63

var (
	// gosimple/slug's defaultSub merged with enSub.
	slugSubstitutions = map[rune]string{
		'"': "", '\'': "", '’': "",
		'‒': "-", '–': "-", '—': "-", '―': "-",
		'&': "and", '@': "at",
	}
	slugNotAllowed     = regexp.MustCompile("[^a-zA-Z0-9-_]")
	slugMultipleDashes = regexp.MustCompile("-+")
)

func slugify(s string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		if sub, ok := slugSubstitutions[r]; ok {
			b.WriteString(sub)
		} else {
			b.WriteRune(r)
		}
	}
	slug := strings.ToLower(unidecode.Unidecode(b.String()))
	slug = slugNotAllowed.ReplaceAllString(slug, "-")
	slug = slugMultipleDashes.ReplaceAllString(slug, "-")
	slug = strings.Trim(slug, "-_")
	if len(slug) <= slugMaxLength {
		return slug
	}
	// Smart truncate: cut at the last '-' at or before the limit, else at the limit.
	for i := slugMaxLength; i >= 0; i-- {
		if slug[i] == '-' {
			return slug[:i]
		}
	}
	return slug[:slugMaxLength]
}
