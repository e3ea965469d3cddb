module github.com/dumpkit/dumpkit

go 1.26.0

require (
	github.com/dsnet/golib/memfile v1.0.0 // indirect
	github.com/dsnet/golib/unitconv v1.0.2 // indirect
	github.com/google/renameio/v2 v2.0.2 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
