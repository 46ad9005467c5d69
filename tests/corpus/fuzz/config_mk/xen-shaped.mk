# -*- mode: Makefile; -*-
ifeq ($(filter /%,$(XEN_ROOT)),)
$(error XEN_ROOT must be absolute)
endif
-include $(XEN_ROOT)/.config
define cc-option
$(shell true)
endef
LOCAL := /srv/git
QEMU_UPSTREAM_INTREE ?= $(XEN_ROOT)/tools/qemu-xen
# Handle legacy options
ifneq (,$(SEABIOS_UPSTREAM_TAG))
SEABIOS_UPSTREAM_REVISION ?= $(SEABIOS_UPSTREAM_TAG)
endif
ifneq (,$(QEMU_REMOTE))
QEMU_TRADITIONAL_URL ?= $(QEMU_REMOTE)
endif
ifneq (,$(QEMU_TAG))
QEMU_TRADITIONAL_REVISION ?= $(QEMU_TAG)
endif
QEMU_UPSTREAM_URL ?= file://$(LOCAL)/qemu
QEMU_UPSTREAM_REVISION ?= \
    master
MINIOS_UPSTREAM_URL = file://${LOCAL}/minios
MINIOS_UPSTREAM_REVISION ?= 0123456789abcdef0123456789abcdef01234567  # pinned
SEABIOS_UPSTREAM_URL ?= file://$(LOCAL)/seabios
SEABIOS_UPSTREAM_TAG = rel-1.16.3
QEMU_REMOTE = file://$(LOCAL)/trad
QEMU_TAG = xen-4.20.0
ifeq ($(QEMU_UPSTREAM_REVISION),master)
QEMU_UPSTREAM_REVISION = 89abcdef0123456789abcdef0123456789abcdef
else
QEMU_UPSTREAM_REVISION = wrong
endif
