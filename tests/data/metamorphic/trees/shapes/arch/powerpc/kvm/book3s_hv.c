// SPDX-License-Identifier: GPL-2.0-only
/*
 * Control-flow shapes the bundled trees lack (if/else with a returning arm, an
 * if-chain on one value, a switch), so that every metamorphic transformation has
 * sites: tests/test_metamorphic.py rewrites them and expects the same findings.
 */
#include <asm/kvm_book3s.h>

static int kvmppc_core_vcpu_create_hv(struct kvm_vcpu *vcpu)
{
	struct kvm *kvm = vcpu->kvm;
	unsigned int id = vcpu->vcpu_id;
	struct kvmppc_vcore *vcore = NULL;
	int core, mode;

	if (id >= KVM_MAX_VCPUS) {
		pr_devel("KVM: VCPU ID too high\n");
		return -EINVAL;
	} else {
		core = kvmppc_pack_vcpu_id(kvm, id);
	}
	switch (kvm->arch.smt_mode) {
	case 1:
		break;
	default:
		return -EINVAL;
	}
	mode = kvm->arch.emul_smt_mode;
	if (mode == 1)
		pr_devel("KVM: one thread per core\n");
	else if (mode == 2)
		pr_devel("KVM: two threads per core\n");
	else
		pr_devel("KVM: %d threads per core\n", mode);
	if (core < KVM_MAX_VCORES) {
		vcore = kvm->arch.vcores[core];
		if (vcore)
			return -EBUSY;
	}
	return vcore ? 0 : -EINVAL;
}
