# Build, install and package dumpkit's commands.
#
#   make                 build/bin/<command> for every cmd/<command>, build/man/*.gz
#   make install         PREFIX (default /usr/local), DESTDIR; see the directories below
#   make uninstall       removes what install put there, except the configuration file
#   make packages        build/dumpkit_<version>_<arch>.deb, build/dumpkit-<version>.<arch>.rpm
#   make test-packages   packaging/test-packages.sh: contents, install, man, remove (root)
#   make clean
#
# GOARCH=arm64 make packages builds for another architecture. The version
# stamped into every binary (savecore -V) is `git describe --tags --always
# --dirty`; the package version is that, made valid for dpkg and rpm.

GO ?= go
PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/dumpkit
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
# INITDIR=/etc/init.d also installs the rc script there (SysV machines);
# it always goes to $(DOCDIR).
INITDIR ?=

GOARCH ?= $(shell $(GO) env GOARCH)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
# v1.2.3 -> 1.2.3; v1.2.3-4-gabcdef-dirty -> 1.2.3+4.gabcdef.dirty; with no
# tag, abcdef-dirty -> 0.0.0+git.abcdef.dirty (dpkg and rpm want a leading
# digit, rpm allows no '-').
PKG_VERSION ?= $(shell echo '$(VERSION)' | sed -e 's/^v//' -e '/^[0-9][0-9]*\./{s/-/+/;s/-/./g;}' -e '/^[0-9][0-9]*\./!{s/-/./g;s/^/0.0.0+git./;}')
LDFLAGS ?= -s -w

# nfpm, goreleaser's packager, is a build tool and not a dependency of the
# module: it is built once into build/tools at this pinned version.
NFPM_VERSION := v2.48.0
NFPM := build/tools/nfpm-$(NFPM_VERSION)

CMDS := $(notdir $(wildcard cmd/*))
PAGES := $(notdir $(wildcard man/*.[1-9]))
BINS := $(addprefix build/bin/,$(CMDS))
MANGZ := $(addprefix build/man/,$(addsuffix .gz,$(PAGES)))
SCRIPTS := $(notdir $(wildcard dist/scripts/*))

# Architecture names in the file names, as nfpm writes them into the packages.
deb_arch = $(patsubst 386,i386,$(patsubst ppc64le,ppc64el,$(patsubst mips64le,mips64el,$(patsubst mipsle,mipsel,$(1)))))
rpm_arch = $(patsubst amd64,x86_64,$(patsubst 386,i386,$(patsubst arm64,aarch64,$(patsubst mips64le,mips64el,$(patsubst mipsle,mipsel,$(patsubst loong64,loongarch64,$(1)))))))
DEB := build/dumpkit_$(PKG_VERSION)_$(call deb_arch,$(GOARCH)).deb
RPM := build/dumpkit-$(PKG_VERSION).$(call rpm_arch,$(GOARCH)).rpm

.PHONY: all build man install uninstall packages deb rpm test-packages clean version FORCE
all: build
build: $(BINS) man
man: $(MANGZ)

version:
	@echo $(VERSION) $(PKG_VERSION)

# go build decides itself what is out of date.
build/bin/%: FORCE
	@mkdir -p build/bin
	CGO_ENABLED=0 GOARCH=$(GOARCH) $(GO) build -trimpath -ldflags '$(LDFLAGS) -X main.version=$(VERSION)' -o $@ ./cmd/$*

build/man/%.gz: man/%
	@mkdir -p build/man
	gzip -9nc $< >$@

# The unit and the rc script name /usr/sbin; installed elsewhere, they name SBINDIR.
build/dist/%: dist/% FORCE
	@mkdir -p build/dist
	sed 's|/usr/sbin/|$(SBINDIR)/|g' $< >$@

install: build build/dist/savecore.service build/dist/diskdump.init
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(DOCDIR)/examples
	install -m 0755 $(BINS) $(DESTDIR)$(SBINDIR)/
	install -m 0644 $(filter %.8.gz,$(MANGZ)) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 $(filter %.5.gz,$(MANGZ)) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 build/dist/savecore.service $(DESTDIR)$(SYSTEMDUNITDIR)/
	install -m 0755 build/dist/diskdump.init $(DESTDIR)$(DOCDIR)/diskdump.init
	install -m 0755 $(addprefix dist/scripts/,$(SCRIPTS)) $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 packaging/diskdump.sysconfig $(DESTDIR)$(DOCDIR)/diskdump.sysconfig
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0644 LICENSE $(DESTDIR)$(DOCDIR)/copyright
	if [ -n "$(INITDIR)" ]; then install -D -m 0755 build/dist/diskdump.init $(DESTDIR)$(INITDIR)/diskdump; fi
	# An existing configuration is never replaced.
	if [ ! -e $(DESTDIR)$(SYSCONFDIR)/sysconfig/diskdump ]; then \
		install -D -m 0644 packaging/diskdump.sysconfig $(DESTDIR)$(SYSCONFDIR)/sysconfig/diskdump; fi

# The configuration file stays, as a package removal (not purge) leaves it.
uninstall:
	rm -f $(addprefix $(DESTDIR)$(SBINDIR)/,$(CMDS))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(filter %.8.gz,$(MANGZ))))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(filter %.5.gz,$(MANGZ))))
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/savecore.service
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/examples/,$(SCRIPTS))
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,diskdump.init diskdump.sysconfig README.md copyright)
	if [ -n "$(INITDIR)" ]; then rm -f $(DESTDIR)$(INITDIR)/diskdump; fi
	-rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null

$(NFPM):
	@mkdir -p build/tools
	GOBIN=$(CURDIR)/build/tools $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	mv build/tools/nfpm $@

packages: deb rpm
# File times in the packages: the last commit's, so that a rebuild is identical.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH
deb rpm: build $(NFPM)
	rm -f $(if $(filter deb,$@),$(DEB),$(RPM))
	NFPM_ARCH=$(GOARCH) PKG_VERSION=$(PKG_VERSION) $(NFPM) package --config packaging/nfpm.yaml \
		--packager $@ --target $(if $(filter deb,$@),$(DEB),$(RPM))

# The same packages one version up, for the upgrade checks.
UPGRADE_VERSION := $(PKG_VERSION).1
test-packages: packages
	$(MAKE) --no-print-directory deb rpm PKG_VERSION=$(UPGRADE_VERSION)
	bash packaging/test-packages.sh $(DEB) $(RPM) \
		$(subst $(PKG_VERSION),$(UPGRADE_VERSION),$(DEB) $(RPM)) $(VERSION)

clean:
	rm -rf build
