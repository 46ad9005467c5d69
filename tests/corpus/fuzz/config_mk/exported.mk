QEMU_UPSTREAM_URL ?= https://h/qemu-xen.git
QEMU_UPSTREAM_REVISION ?= master
SEABIOS_UPSTREAM_URL ?= https://h/seabios.git
SEABIOS_UPSTREAM_REVISION ?= rel-1.16.3
OVMF_UPSTREAM_URL ?= https://h/ovmf.git
OVMF_UPSTREAM_REVISION ?= edk2-stable202408
