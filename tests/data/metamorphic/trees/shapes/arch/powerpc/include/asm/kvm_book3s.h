static inline u32 kvmppc_pack_vcpu_id(struct kvm *kvm, u32 id)
    {
    	const int block_offsets[MAX_SMT_THREADS] = {0, 4, 2, 6, 1, 5, 3, 7};
    	int stride = kvm->arch.emul_smt_mode;
    	int block = (id / KVM_MAX_VCPUS) * (MAX_SMT_THREADS / stride);
    	u32 packed_id;

    	BUG_ON(block >= MAX_SMT_THREADS);
    	packed_id = (id % KVM_MAX_VCPUS) + block_offsets[block];
    	BUG_ON(packed_id >= KVM_MAX_VCPUS);
    	return packed_id;
}
