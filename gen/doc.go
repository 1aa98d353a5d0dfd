// Package gen holds the Go code generated from proto/ by `make proto`. Nothing
// here is written by hand, and nothing here imports the rest of the project.
package gen
