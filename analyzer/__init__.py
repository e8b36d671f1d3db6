"""vpcheck: VCPU-ID packing, VCORE and XIVE VP numbering checks for KVM on POWER."""

__version__ = "0.1.0"
