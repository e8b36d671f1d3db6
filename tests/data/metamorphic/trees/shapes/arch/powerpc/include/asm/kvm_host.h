#ifndef __POWERPC_KVM_HOST_H__
#define __POWERPC_KVM_HOST_H__
#define KVM_MAX_VCPUS		NR_CPUS
#define KVM_MAX_VCORES		NR_CPUS
#include <asm/kvm_book3s_asm.h>
#define KVM_MAX_VCPU_IDS	(MAX_SMT_THREADS * KVM_MAX_VCORES)
#endif
