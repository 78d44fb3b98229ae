"""CBAM, the Convolutional Block Attention Module (Woo et al., ECCV 2018), as an archspec op.

`archspec_cbam.ops` registers the op `cbam(reduction=16, k=7, bias=false)` when imported;
`archspec_cbam.module` holds its torch module, imported only when a network is built.
"""
