// Package text bounds and cleans strings that vmrunner shows to people.
//
// Truncate is the one way the tree shortens a string: it never cuts a UTF-8
// character in half. Sanitize is applied once, where a string enters the
// host from the guest (the protocol session and the console scanner), so
// that whatever a guest sends is safe on a terminal, in logs, JUnit, HTML and
// GitHub annotations: no escape sequence, bell, backspace, carriage return
// or bidirectional override survives it; each is shown as a visible escape
// (`\x1b`) instead.
package text
