"""ldm_ref: an independent float64 PyTorch implementation of the Stable Diffusion 1.x/2.x
networks, written from the original LDM code (Stability-AI/stablediffusion ldm/modules/
diffusionmodules/openaimodel.py, util.py, attention.py, diffusionmodules/model.py,
encoders/modules.py) and HF/OpenCLIP text towers, as engine-notes section 4 describes. It reads
the tensors of a single-file LDM checkpoint (our tiny random-weight models, through st.py) by
their file names and computes everything in float64; no module of the C engine is imported or
mirrored (its config inference, name canonicalisation and view splitting are not used here).

    import st, ldm_ref
    tensors, meta = st.load("tiny.safetensors")
    m = ldm_ref.Model(tensors, meta)                    # float64 copies of the weights
    ctx = m.text_encode(ids)                            # ids: LongTensor [B, 77]
    eps = m.unet(x, t, ctx)                             # x [B, C, h, w], t [B] (float)
    img = m.vae_decode(z)                               # scaled latent -> [-1, 1] image
    mean = m.vae_encode(img)                            # posterior mean * scale factor

`hook(name, tensor)` (optional on every forward) receives the named intermediates that the C
engine's debug hook reports too ("unet.input_blocks.3", "clip.layer.0", "vae.decoder.up.2"...).

Facts followed (engine-notes 4.7): ResBlock/out GroupNorm eps 1e-5, SpatialTransformer and VAE
GroupNorm eps 1e-6, LayerNorm 1e-5, GEGLU with exact erf GELU, CLIP-L quick_gelu and causal mask,
OpenCLIP exact GELU with the penultimate layer + ln_final, timestep embedding [cos, sin] with
LDM's float32 frequencies and arguments, VAE downsampling padded (0,1,0,1), VAE mid attention
single-head over HW with scale C^-0.5, latent scale 0.18215.
"""
import math

import torch
import torch.nn.functional as F

UNET = "model.diffusion_model."
VAE = "first_stage_model."
HF = "cond_stage_model.transformer.text_model."
OC = "cond_stage_model.model."

DT = torch.float64


def _noop(name, x):
    pass


# ---- shared pieces ----------------------------------------------------------------------------


def group_norm(p, name, x, eps):
    return F.group_norm(x, 32, p[name + ".weight"], p[name + ".bias"], eps)


def layer_norm(p, name, x, eps=1e-5):
    return F.layer_norm(x, (x.shape[-1],), p[name + ".weight"], p[name + ".bias"], eps)


def linear(p, name, x, bias=True):
    return F.linear(x, p[name + ".weight"], p[name + ".bias"] if bias else None)


def conv(p, name, x, stride=1, padding=1):
    return F.conv2d(x, p[name + ".weight"], p[name + ".bias"], stride=stride, padding=padding)


def attention(q, k, v, heads, causal=False, scale=None):
    """q [B, Lq, H*d], k/v [B, Lk, H*d] -> [B, Lq, H*d]; explicit softmax(q k^T * scale) v."""
    b, lq, c = q.shape
    lk = k.shape[1]
    d = c // heads
    qh = q.reshape(b, lq, heads, d).permute(0, 2, 1, 3)
    kh = k.reshape(b, lk, heads, d).permute(0, 2, 1, 3)
    vh = v.reshape(b, lk, heads, d).permute(0, 2, 1, 3)
    s = torch.matmul(qh, kh.transpose(-1, -2)) * (scale if scale is not None else d ** -0.5)
    if causal:
        mask = torch.full((lq, lk), float("-inf"), dtype=s.dtype).triu(1)
        s = s + mask
    o = torch.matmul(torch.softmax(s, dim=-1), vh)
    return o.permute(0, 2, 1, 3).reshape(b, lq, c)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def timestep_embedding(t, dim, max_period=10000):
    """LDM util.timestep_embedding: frequencies and arguments in float32 as LDM computes them,
    cos/sin of those float32 arguments evaluated in float64; [cos, sin]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)
    args = (t.to(torch.float32)[:, None] * freqs[None]).to(DT)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


# ---- the model ------------------------------------------------------------------------------


class Model:
    def __init__(self, tensors, meta):
        self.p = {k: v.to(DT) for k, v in tensors.items() if v.is_floating_point()}
        self.meta = meta
        p = self.p
        # UNet configuration, from the file's names and shapes (+ metadata for heads)
        self.mc = p[UNET + "input_blocks.0.0.weight"].shape[0]
        self.in_channels = p[UNET + "input_blocks.0.0.weight"].shape[1]
        self.n_input = 1 + max(int(k[len(UNET + "input_blocks."):].split(".")[0])
                               for k in p if k.startswith(UNET + "input_blocks."))
        self.n_output = 1 + max(int(k[len(UNET + "output_blocks."):].split(".")[0])
                                for k in p if k.startswith(UNET + "output_blocks."))
        downs = [i for i in range(self.n_input) if UNET + "input_blocks.%d.0.op.weight" % i in p]
        self.levels = len(downs) + 1
        self.num_res_blocks = (self.n_input - 1 - len(downs)) // self.levels
        if "sdc.num_heads" in meta:
            self.num_heads, self.head_ch = int(meta["sdc.num_heads"]), 0
        elif "sdc.num_head_channels" in meta:
            self.num_heads, self.head_ch = 0, int(meta["sdc.num_head_channels"])
        elif OC + "token_embedding.weight" in tensors:
            self.num_heads, self.head_ch = 0, 64
        else:
            self.num_heads, self.head_ch = 8, 0
        # text encoder
        self.openclip = OC + "token_embedding.weight" in p
        if self.openclip:
            width = p[OC + "token_embedding.weight"].shape[1]
            self.text_layers = 1 + max(int(k[len(OC + "transformer.resblocks."):].split(".")[0])
                                       for k in p if k.startswith(OC + "transformer.resblocks."))
        else:
            width = p[HF + "embeddings.token_embedding.weight"].shape[1]
            self.text_layers = 1 + max(int(k[len(HF + "encoder.layers."):].split(".")[0])
                                       for k in p if k.startswith(HF + "encoder.layers."))
        self.text_heads = int(meta.get("sdc.text_heads", width // 64))
        # VAE
        self.vae_levels = 1 + max(int(k[len(VAE + "decoder.up."):].split(".")[0])
                                  for k in p if k.startswith(VAE + "decoder.up."))
        self.vae_dec_blocks = 1 + max(int(k.split(".")[5]) for k in p
                                      if k.startswith(VAE + "decoder.up.0.block."))
        self.vae_enc_blocks = 1 + max(int(k.split(".")[5]) for k in p
                                      if k.startswith(VAE + "encoder.down.0.block."))
        self.scale_factor = float(meta.get("sdc.vae_scale", 0.18215))

    # ---- text encoders ----

    def text_encode(self, ids, hook=_noop):
        """ids [B, 77] -> context [B, 77, width]. SD1 (HF CLIPTextModel names): every layer,
        quick_gelu, final_layer_norm ("last"). SD2 (OpenCLIP names): layers 0..n-2
        ("penultimate"), exact GELU, then ln_final."""
        p = self.p
        if self.openclip:
            x = p[OC + "token_embedding.weight"][ids] + p[OC + "positional_embedding"][None]
            hook("clip.embeddings", x)
            for i in range(self.text_layers - 1):
                pre = OC + "transformer.resblocks.%d." % i
                h = layer_norm(p, pre + "ln_1", x)
                qkv = F.linear(h, p[pre + "attn.in_proj_weight"], p[pre + "attn.in_proj_bias"])
                q, k, v = qkv.chunk(3, dim=-1)
                x = x + linear(p, pre + "attn.out_proj", attention(q, k, v, self.text_heads,
                                                                    causal=True))
                h = F.gelu(linear(p, pre + "mlp.c_fc", layer_norm(p, pre + "ln_2", x)))
                x = x + linear(p, pre + "mlp.c_proj", h)
                hook("clip.layer.%d" % i, x)
            x = layer_norm(p, OC + "ln_final", x)
        else:
            x = (p[HF + "embeddings.token_embedding.weight"][ids] +
                 p[HF + "embeddings.position_embedding.weight"][None, :ids.shape[1]])
            hook("clip.embeddings", x)
            for i in range(self.text_layers):
                pre = HF + "encoder.layers.%d." % i
                h = layer_norm(p, pre + "layer_norm1", x)
                q = linear(p, pre + "self_attn.q_proj", h)
                k = linear(p, pre + "self_attn.k_proj", h)
                v = linear(p, pre + "self_attn.v_proj", h)
                x = x + linear(p, pre + "self_attn.out_proj", attention(q, k, v, self.text_heads,
                                                                         causal=True))
                h = quick_gelu(linear(p, pre + "mlp.fc1", layer_norm(p, pre + "layer_norm2", x)))
                x = x + linear(p, pre + "mlp.fc2", h)
                hook("clip.layer.%d" % i, x)
            x = layer_norm(p, HF + "final_layer_norm", x)
        hook("clip.final", x)
        return x

    # ---- UNet ----

    def _heads(self, ch):
        if self.num_heads:
            return self.num_heads
        return ch // self.head_ch

    def _resblock(self, pre, x, emb):
        p = self.p
        h = conv(p, pre + "in_layers.2", F.silu(group_norm(p, pre + "in_layers.0", x, 1e-5)))
        h = h + linear(p, pre + "emb_layers.1", F.silu(emb))[:, :, None, None]
        h = conv(p, pre + "out_layers.3", F.silu(group_norm(p, pre + "out_layers.0", h, 1e-5)))
        if pre + "skip_connection.weight" in p:
            x = conv(p, pre + "skip_connection", x, padding=0)
        return x + h

    def _proj(self, name, x):
        w = self.p[name + ".weight"]
        if w.dim() == 4:  # SD1: 1x1 conv on NCHW
            return F.conv2d(x, w, self.p[name + ".bias"])
        return F.linear(x, w, self.p[name + ".bias"])  # SD2: Linear on tokens

    def _transformer(self, pre, x, ctx):
        p = self.p
        b, c, hh, ww = x.shape
        heads = self._heads(c)
        x_in = x
        x = group_norm(p, pre + "norm", x, 1e-6)
        conv_proj = p[pre + "proj_in.weight"].dim() == 4
        if conv_proj:
            x = self._proj(pre + "proj_in", x)
        x = x.permute(0, 2, 3, 1).reshape(b, hh * ww, c)  # b c h w -> b (h w) c
        if not conv_proj:
            x = self._proj(pre + "proj_in", x)
        d = 0
        while pre + "transformer_blocks.%d.norm1.weight" % d in p:
            bp = pre + "transformer_blocks.%d." % d
            h = layer_norm(p, bp + "norm1", x)
            a = attention(linear(p, bp + "attn1.to_q", h, False), linear(p, bp + "attn1.to_k", h,
                          False), linear(p, bp + "attn1.to_v", h, False), heads)
            x = x + linear(p, bp + "attn1.to_out.0", a)
            h = layer_norm(p, bp + "norm2", x)
            a = attention(linear(p, bp + "attn2.to_q", h, False),
                          linear(p, bp + "attn2.to_k", ctx, False),
                          linear(p, bp + "attn2.to_v", ctx, False), heads)
            x = x + linear(p, bp + "attn2.to_out.0", a)
            h = linear(p, bp + "ff.net.0.proj", layer_norm(p, bp + "norm3", x))
            hx, gate = h.chunk(2, dim=-1)
            x = x + linear(p, bp + "ff.net.2", hx * F.gelu(gate))
            d += 1
        if not conv_proj:
            x = self._proj(pre + "proj_out", x)
        x = x.reshape(b, hh, ww, c).permute(0, 3, 1, 2)
        if conv_proj:
            x = self._proj(pre + "proj_out", x)
        return x + x_in

    def _block(self, pre, x, emb, ctx):
        """One TimestepEmbedSequential: its layers are told apart by their tensor names."""
        p = self.p
        i = 0
        while any(k.startswith(pre + "%d." % i) for k in p):
            lp = pre + "%d." % i
            if lp + "in_layers.0.weight" in p:
                x = self._resblock(lp, x, emb)
            elif lp + "norm.weight" in p:
                x = self._transformer(lp, x, ctx)
            elif lp + "op.weight" in p:
                x = conv(p, lp + "op", x, stride=2, padding=1)
            elif lp + "conv.weight" in p:
                x = conv(p, lp + "conv", F.interpolate(x, scale_factor=2, mode="nearest"))
            elif lp + "weight" in p:  # input_blocks.0.0, the input conv
                x = conv(p, lp[:-1], x)
            else:
                raise ValueError("unknown layer " + lp)
            i += 1
        return x

    def unet(self, x, t, ctx, hook=_noop):
        """x [B, in, h, w], t [B] float timesteps, ctx [B, L, context] -> [B, out, h, w]"""
        p = self.p
        x, ctx = x.to(DT), ctx.to(DT)
        temb = timestep_embedding(torch.as_tensor(t, dtype=DT).reshape(-1), self.mc)
        emb = linear(p, UNET + "time_embed.2", F.silu(linear(p, UNET + "time_embed.0", temb)))
        hook("unet.time_embed", emb)
        hs = []
        h = x
        for i in range(self.n_input):
            h = self._block(UNET + "input_blocks.%d." % i, h, emb, ctx)
            hook("unet.input_blocks.%d" % i, h)
            hs.append(h)
        h = self._block(UNET + "middle_block.", h, emb, ctx)
        hook("unet.middle_block", h)
        for i in range(self.n_output):
            h = torch.cat([h, hs.pop()], dim=1)
            h = self._block(UNET + "output_blocks.%d." % i, h, emb, ctx)
            hook("unet.output_blocks.%d" % i, h)
        h = conv(p, UNET + "out.2", F.silu(group_norm(p, UNET + "out.0", h, 1e-5)))
        hook("unet.out", h)
        return h

    # ---- VAE ----

    def _vae_resnet(self, pre, x):
        p = self.p
        h = conv(p, pre + "conv1", F.silu(group_norm(p, pre + "norm1", x, 1e-6)))
        h = conv(p, pre + "conv2", F.silu(group_norm(p, pre + "norm2", h, 1e-6)))
        if pre + "nin_shortcut.weight" in p:
            x = conv(p, pre + "nin_shortcut", x, padding=0)
        return x + h

    def _vae_attn(self, pre, x):
        p = self.p
        h = group_norm(p, pre + "norm", x, 1e-6)
        q = conv(p, pre + "q", h, padding=0)
        k = conv(p, pre + "k", h, padding=0)
        v = conv(p, pre + "v", h, padding=0)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).permute(0, 2, 1)  # b, hw, c
        k = k.reshape(b, c, hh * ww)  # b, c, hw
        w_ = torch.bmm(q, k) * (int(c) ** (-0.5))
        w_ = torch.softmax(w_, dim=2)
        v = v.reshape(b, c, hh * ww)
        h = torch.bmm(v, w_.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + conv(p, pre + "proj_out", h, padding=0)

    def _vae_mid(self, pre, x):
        x = self._vae_resnet(pre + "mid.block_1.", x)
        x = self._vae_attn(pre + "mid.attn_1.", x)
        return self._vae_resnet(pre + "mid.block_2.", x)

    def vae_decode(self, z, hook=_noop):
        """scaled latent [B, 4, h, w] -> image [B, 3, 8h, 8w] in about [-1, 1] (not clamped)"""
        p = self.p
        pre = VAE + "decoder."
        z = z.to(DT) / self.scale_factor
        h = F.conv2d(z, p[VAE + "post_quant_conv.weight"], p[VAE + "post_quant_conv.bias"])
        h = conv(p, pre + "conv_in", h)
        hook("vae.decoder.conv_in", h)
        h = self._vae_mid(pre, h)
        hook("vae.decoder.mid", h)
        for lvl in reversed(range(self.vae_levels)):
            for i in range(self.vae_dec_blocks):
                h = self._vae_resnet(pre + "up.%d.block.%d." % (lvl, i), h)
            if lvl != 0:
                h = conv(p, pre + "up.%d.upsample.conv" % lvl,
                         F.interpolate(h, scale_factor=2, mode="nearest"))
            hook("vae.decoder.up.%d" % lvl, h)
        h = conv(p, pre + "conv_out", F.silu(group_norm(p, pre + "norm_out", h, 1e-6)))
        hook("vae.decoder.out", h)
        return h

    def vae_encode(self, img, hook=_noop):
        """image [B, 3, H, W] in [-1, 1] -> posterior mean * scale factor [B, 4, H/8, W/8]"""
        p = self.p
        pre = VAE + "encoder."
        h = conv(p, pre + "conv_in", img.to(DT))
        hook("vae.encoder.conv_in", h)
        for lvl in range(self.vae_levels):
            for i in range(self.vae_enc_blocks):
                h = self._vae_resnet(pre + "down.%d.block.%d." % (lvl, i), h)
            if lvl != self.vae_levels - 1:
                h = conv(p, pre + "down.%d.downsample.conv" % lvl, F.pad(h, (0, 1, 0, 1)),
                         stride=2, padding=0)
            hook("vae.encoder.down.%d" % lvl, h)
        h = self._vae_mid(pre, h)
        hook("vae.encoder.mid", h)
        h = conv(p, pre + "conv_out", F.silu(group_norm(p, pre + "norm_out", h, 1e-6)))
        hook("vae.encoder.out", h)
        moments = F.conv2d(h, p[VAE + "quant_conv.weight"], p[VAE + "quant_conv.bias"])
        mean = moments[:, :moments.shape[1] // 2]
        return mean * self.scale_factor


def to_uint8(img):
    """[-1, 1] image [B, 3, H, W] -> uint8 [B, H, W, 3]: clamp((x+1)/2, 0, 1), then
    floor(255 v + 0.5)."""
    v = ((img.to(DT) + 1) / 2).clamp(0, 1)
    return torch.floor(v * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
