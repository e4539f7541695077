// The package is Linux-only (seccomp.go); this file lets it exist everywhere.

package seccomp
