module github.com/dumpkit/dumpkit

go 1.26.0

require (
	github.com/dsnet/golib/memfile v1.0.0
	github.com/dsnet/golib/unitconv v1.0.2
	github.com/google/renameio/v2 v2.0.2
	github.com/klauspost/compress v1.20.4
	github.com/stretchr/testify v1.12.1
	golang.org/x/sys v0.50.0
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
