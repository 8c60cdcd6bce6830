# L1 itself: /dev/kvm is there and answers KVM_GET_API_VERSION.
# timeout: 180
set -eu
test -c /dev/kvm
grep -qw svm /proc/cpuinfo
echo "kvm ok"
