# Pretraining the CNNs from scratch: 400 iterations as pretrain_400it.py, at lr
# 0.05 without gradient clipping. Under the fine-tuning schedule's lr 0.01 and
# clip 1 a network trained from scratch barely moves in 400 steps (its gradient
# norm stays near 5, so every step is cut five-fold); the ResNets' residual
# branches then stay near their zero initialisation (see README, "Pretraining").
_base_ = ['./pretrain_400it.py']
optim_wrapper = dict(optimizer=dict(lr=0.05), clip_grad=None)
