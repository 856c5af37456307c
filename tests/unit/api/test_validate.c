/*
 * api validation: isd_api_parse_generation() against tables of bodies and the exact error
 * (id, param, message) or the resolved request a client must get (contract §3.1, §4, §7.3).
 * Bodies in the tables are written with ' for " (converted before parsing) to stay readable.
 * Every case also checks that a failed parse leaves nothing allocated in the request (and the
 * whole binary runs under ASan/LSan, which catches anything else).
 */
#include "support/test.h"

#include "api/api.h"
#include "err/err.h"
#include "text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fake catalogue ---- */

static const struct isd_profile *fake_lookup(void *ctx, const char *model, size_t len)
{
    (void)ctx;
    static const struct {
        const char *alias, *profile;
    } aliases[] = {
        {"chatgpt-image-latest", "gpt-image-1.5"},
        {"gpt-image-2-2026-04-21", "gpt-image-2"},
    };
    char name[64];
    if (len >= sizeof name)
        return NULL;
    memcpy(name, model, len);
    name[len] = '\0';
    if (strlen(name) != len)
        return NULL;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(name, aliases[i].alias) == 0)
            return isd_api_profile_by_name(aliases[i].profile);
    return isd_api_profile_by_name(name);
}

static const struct isd_api_resolver resolver = {
    .ctx = NULL,
    .lookup = fake_lookup,
    .default_model = "dall-e-2",
    .default_gpt_model = "gpt-image-1",
};

/* ' → " so the tables read like JSON; \u0027 stays available for a literal quote. */
static char *body_of(const char *quoted)
{
    char *b = strdup(quoted);
    assert_non_null(b);
    for (char *p = b; *p; p++)
        if (*p == '\'')
            *p = '"';
    return b;
}

static const char BAD_JSON_MSG[] =
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please contact "
    "us through our help center at help.openai.com.)";

#define GPT_QUALITY  "Supported values are: 'low', 'medium', 'high', and 'auto'."
#define GPT_SIZES    "Supported values are: '1024x1024', '1536x1024', '1024x1536', and 'auto'."
#define DALLE2_SIZES "Supported values are: '256x256', '512x512', and '1024x1024'."
#define FORMATS      "Supported values are: 'png', 'webp', and 'jpeg'."
#define BACKGROUNDS  "Supported values are: 'transparent', 'opaque', and 'auto'."
#define SIZE_FORMAT  "Expected WIDTHxHEIGHT, for example '1824x1024'."
#define SIZE_16      "Width and height must both be divisible by 16."
#define SIZE_EDGE    "The longest edge must be at most 3840 pixels."
#define SIZE_RATIO   "The aspect ratio must be between 1:3 and 3:1."
#define SIZE_PIXELS  "The total number of pixels must be between 655360 and 8294400."
#define PNG_COMP     "Compression less than 100 is not supported for PNG output format"
#define NO_TRANSP    "Transparent background is not supported for this model."
#define TRANSP_JPEG                                                                                \
    "Transparent background requires output_format to be png or webp, but got 'jpeg'."
#define NOT_STREAM(m)                                                                              \
    "Streaming is not supported for the model '" m                                                 \
    "'. It is supported for the GPT image models only."
#define TYPE(p, exp, got) "Invalid type for '" p "': expected " exp ", but got " got " instead."
#define BELOW(p, min, got)                                                                         \
    "Invalid '" p "': integer below minimum value. Expected a value >= " min ", but got " got      \
    " instead."
#define ABOVE(p, max, got)                                                                         \
    "Invalid '" p "': integer above maximum value. Expected a value <= " max ", but got " got      \
    " instead."
#define UNKNOWN(p) "Unknown parameter: '" p "'."
#define EMPTY_PROMPT                                                                               \
    "Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty "   \
    "string instead."

/* ---- error table ---- */

struct err_case {
    const char *name;
    const char *body; /* ' for " */
    enum isd_err_id id;
    const char *param;   /* NULL: JSON null */
    const char *message; /* exact */
};

static const struct err_case err_cases[] = {
    /* unknown keys, and keys the model does not take (GPT: refused even when null) */
    {"unknown parameter", "{'prompt':'x','model':'gpt-image-1','bogus_field':1}",
     ISD_E_UNKNOWN_PARAM, "bogus_field", UNKNOWN("bogus_field")},
    {"unknown parameter, null", "{'prompt':'x','foo':null}", ISD_E_UNKNOWN_PARAM, "foo",
     UNKNOWN("foo")},
    {"mask on generations, even null", "{'prompt':'x','model':'gpt-image-1','mask':null}",
     ISD_E_UNKNOWN_PARAM, "mask", UNKNOWN("mask")},
    {"images on generations", "{'prompt':'x','model':'gpt-image-1','images':[]}",
     ISD_E_UNKNOWN_PARAM, "images", UNKNOWN("images")},
    {"input_fidelity on generations",
     "{'prompt':'x','model':'gpt-image-1','input_fidelity':'high'}", ISD_E_UNKNOWN_PARAM,
     "input_fidelity", UNKNOWN("input_fidelity")},
    {"key with a quote", "{'prompt':'x','a\\'b':1}", ISD_E_UNKNOWN_PARAM, "a\"b",
     "Unknown parameter: 'a\"b'."},
    {"response_format on gpt-image-1",
     "{'prompt':'x','model':'gpt-image-1','response_format':'b64_json'}", ISD_E_UNKNOWN_PARAM,
     "response_format", UNKNOWN("response_format")},
    {"response_format null on gpt-image-2",
     "{'prompt':'x','model':'gpt-image-2','response_format':null}", ISD_E_UNKNOWN_PARAM,
     "response_format", UNKNOWN("response_format")},
    {"response_format null on gpt-image-1-mini",
     "{'prompt':'x','model':'gpt-image-1-mini','response_format':null}", ISD_E_UNKNOWN_PARAM,
     "response_format", UNKNOWN("response_format")},
    {"style null on gpt-image-1", "{'prompt':'x','model':'gpt-image-1','style':null}",
     ISD_E_UNKNOWN_PARAM, "style", UNKNOWN("style")},
    {"style on gpt-image-1.5", "{'prompt':'x','model':'gpt-image-1.5','style':'vivid'}",
     ISD_E_UNKNOWN_PARAM, "style", UNKNOWN("style")},
    {"style on chatgpt-image-latest",
     "{'prompt':'x','model':'chatgpt-image-latest','style':'natural'}", ISD_E_UNKNOWN_PARAM,
     "style", UNKNOWN("style")},
    {"style on dall-e-2", "{'prompt':'x','model':'dall-e-2','style':'vivid'}", ISD_E_UNKNOWN_PARAM,
     "style", UNKNOWN("style")},
    {"output_format on dall-e-3", "{'prompt':'x','model':'dall-e-3','output_format':'png'}",
     ISD_E_UNKNOWN_PARAM, "output_format", UNKNOWN("output_format")},
    {"output_compression on dall-e-2", "{'prompt':'x','model':'dall-e-2','output_compression':100}",
     ISD_E_UNKNOWN_PARAM, "output_compression", UNKNOWN("output_compression")},
    {"background on dall-e-3", "{'prompt':'x','model':'dall-e-3','background':'opaque'}",
     ISD_E_UNKNOWN_PARAM, "background", UNKNOWN("background")},
    {"moderation on dall-e-2", "{'prompt':'x','model':'dall-e-2','moderation':'low'}",
     ISD_E_UNKNOWN_PARAM, "moderation", UNKNOWN("moderation")},

    /* model */
    {"model integer", "{'prompt':'x','model':3}", ISD_E_INVALID_TYPE, "model",
     TYPE("model", "a string", "an integer")},
    {"model decimal", "{'prompt':'x','model':1.5}", ISD_E_INVALID_TYPE, "model",
     TYPE("model", "a string", "a decimal number")},
    {"model boolean", "{'prompt':'x','model':true}", ISD_E_INVALID_TYPE, "model",
     TYPE("model", "a string", "a boolean")},
    {"model array", "{'prompt':'x','model':['gpt-image-1']}", ISD_E_INVALID_TYPE, "model",
     TYPE("model", "a string", "an array")},
    {"model object", "{'prompt':'x','model':{}}", ISD_E_INVALID_TYPE, "model",
     TYPE("model", "a string", "an object")},
    {"unknown model", "{'prompt':'x','model':'bad model'}", ISD_E_NO_SUCH_MODEL, "model",
     "The model 'bad model' does not exist."},
    {"empty model", "{'prompt':'x','model':''}", ISD_E_NO_SUCH_MODEL, "model",
     "The model '' does not exist."},
    {"model names are case-sensitive", "{'prompt':'x','model':'GPT-IMAGE-1'}", ISD_E_NO_SUCH_MODEL,
     "model", "The model 'GPT-IMAGE-1' does not exist."},
    {"model with a trailing space", "{'prompt':'x','model':'gpt-image-1 '}", ISD_E_NO_SUCH_MODEL,
     "model", "The model 'gpt-image-1 ' does not exist."},
    {"model gpt-image-3", "{'prompt':'x','model':'gpt-image-3'}", ISD_E_NO_SUCH_MODEL, "model",
     "The model 'gpt-image-3' does not exist."},

    /* prompt */
    {"missing prompt", "{'model':'gpt-image-1'}", ISD_E_MISSING_PARAM, "prompt",
     "Missing required parameter: 'prompt'."},
    {"missing prompt, empty body", "{}", ISD_E_MISSING_PARAM, "prompt",
     "Missing required parameter: 'prompt'."},
    {"missing prompt on dall-e-3", "{'model':'dall-e-3'}", ISD_E_MISSING_PARAM, "prompt",
     "Missing required parameter: 'prompt'."},
    {"empty prompt", "{'prompt':'','model':'gpt-image-1'}", ISD_E_EMPTY_STRING, "prompt",
     EMPTY_PROMPT},
    {"null prompt", "{'prompt':null,'model':'gpt-image-1'}", ISD_E_INVALID_TYPE, "prompt",
     TYPE("prompt", "a string", "null")},
    {"integer prompt", "{'prompt':5,'model':'gpt-image-1'}", ISD_E_INVALID_TYPE, "prompt",
     TYPE("prompt", "a string", "an integer")},
    {"decimal prompt", "{'prompt':1.5,'model':'gpt-image-1'}", ISD_E_INVALID_TYPE, "prompt",
     TYPE("prompt", "a string", "a decimal number")},
    {"boolean prompt", "{'prompt':true}", ISD_E_INVALID_TYPE, "prompt",
     TYPE("prompt", "a string", "a boolean")},
    {"array prompt", "{'prompt':['x'],'model':'gpt-image-2'}", ISD_E_INVALID_TYPE, "prompt",
     TYPE("prompt", "a string", "an array")},
    {"object prompt", "{'prompt':{'text':'x'},'model':'dall-e-3'}", ISD_E_INVALID_TYPE, "prompt",
     TYPE("prompt", "a string", "an object")},

    /* n */
    {"n below 1", "{'prompt':'x','model':'gpt-image-1','n':0}", ISD_E_INT_BELOW_MIN, "n",
     BELOW("n", "1", "0")},
    {"n negative", "{'prompt':'x','model':'gpt-image-1','n':-1}", ISD_E_INT_BELOW_MIN, "n",
     BELOW("n", "1", "-1")},
    {"n above 10", "{'prompt':'x','model':'gpt-image-1','n':11}", ISD_E_INT_ABOVE_MAX, "n",
     ABOVE("n", "10", "11")},
    {"n above 10 on dall-e-2", "{'prompt':'x','model':'dall-e-2','n':11}", ISD_E_INT_ABOVE_MAX, "n",
     ABOVE("n", "10", "11")},
    {"n decimal", "{'prompt':'x','model':'gpt-image-1','n':1.5}", ISD_E_INVALID_TYPE, "n",
     TYPE("n", "an integer", "a decimal number")},
    {"n exponent", "{'prompt':'x','model':'gpt-image-1','n':1e2}", ISD_E_INVALID_TYPE, "n",
     TYPE("n", "an integer", "a decimal number")},
    {"n string", "{'prompt':'x','model':'gpt-image-1','n':'2'}", ISD_E_INVALID_TYPE, "n",
     TYPE("n", "an integer", "a string")},
    {"n boolean", "{'prompt':'x','model':'gpt-image-1','n':true}", ISD_E_INVALID_TYPE, "n",
     TYPE("n", "an integer", "a boolean")},
    {"n array", "{'prompt':'x','model':'gpt-image-1','n':[1]}", ISD_E_INVALID_TYPE, "n",
     TYPE("n", "an integer", "an array")},
    {"n object", "{'prompt':'x','model':'gpt-image-1','n':{}}", ISD_E_INVALID_TYPE, "n",
     TYPE("n", "an integer", "an object")},
    {"n int64 max", "{'prompt':'x','model':'gpt-image-1','n':9223372036854775807}",
     ISD_E_INT_ABOVE_MAX, "n", ABOVE("n", "10", "9223372036854775807")},
    {"n int64 min", "{'prompt':'x','model':'gpt-image-1','n':-9223372036854775808}",
     ISD_E_INT_BELOW_MIN, "n", BELOW("n", "1", "-9223372036854775808")},
    /* beyond int64: the body is re-read with integers as reals */
    {"n absurd", "{'prompt':'x','model':'gpt-image-1','n':123456789012345678901234567890}",
     ISD_E_INT_ABOVE_MAX, "n", ABOVE("n", "10", "123456789012345677877719597056")},
    {"n absurd negative",
     "{'prompt':'x','model':'gpt-image-1','n':-123456789012345678901234567890}",
     ISD_E_INT_BELOW_MIN, "n", BELOW("n", "1", "-123456789012345677877719597056")},
    {"n int64 max + 1", "{'prompt':'x','model':'gpt-image-1','n':9223372036854775808}",
     ISD_E_INT_ABOVE_MAX, "n", ABOVE("n", "10", "9223372036854775808")},
    {"n decimal with an absurd integer elsewhere",
     "{'prompt':'x','model':'gpt-image-1','n':2.5,'output_compression':"
     "123456789012345678901234567890}",
     ISD_E_INVALID_TYPE, "n", TYPE("n", "an integer", "a decimal number")},
    {"n string with an absurd integer elsewhere",
     "{'prompt':'x','model':'gpt-image-1','n':'3','partial_images':99999999999999999999999}",
     ISD_E_INVALID_TYPE, "n", TYPE("n", "an integer", "a string")},
    {"absurd output_compression",
     "{'prompt':'x','model':'gpt-image-1','output_format':'jpeg','output_compression':"
     "123456789012345678901234567890}",
     ISD_E_INT_ABOVE_MAX, "output_compression",
     ABOVE("output_compression", "100", "123456789012345677877719597056")},
    {"absurd negative partial_images",
     "{'prompt':'x','model':'gpt-image-1','partial_images':-99999999999999999999}",
     ISD_E_INT_BELOW_MIN, "partial_images", BELOW("partial_images", "0", "-100000000000000000000")},
    {"n=2 on dall-e-3", "{'prompt':'x','model':'dall-e-3','n':2}", ISD_E_INVALID_REQUEST, NULL,
     "You must provide n=1 for this model."},
    {"n=10 on dall-e-3", "{'prompt':'x','model':'dall-e-3','n':10}", ISD_E_INVALID_REQUEST, NULL,
     "You must provide n=1 for this model."},
    {"n=11 on dall-e-3: range first", "{'prompt':'x','model':'dall-e-3','n':11}",
     ISD_E_INT_ABOVE_MAX, "n", ABOVE("n", "10", "11")},

    /* quality */
    {"quality unknown", "{'prompt':'x','model':'gpt-image-1','quality':'ultra'}",
     ISD_E_INVALID_VALUE, "quality", "Invalid value: 'ultra'. " GPT_QUALITY},
    {"quality upper case", "{'prompt':'x','model':'gpt-image-1','quality':'HIGH'}",
     ISD_E_INVALID_VALUE, "quality", "Invalid value: 'HIGH'. " GPT_QUALITY},
    {"quality standard on gpt-image-2", "{'prompt':'x','model':'gpt-image-2','quality':'standard'}",
     ISD_E_INVALID_VALUE, "quality", "Invalid value: 'standard'. " GPT_QUALITY},
    {"quality hd on gpt-image-2", "{'prompt':'x','model':'gpt-image-2','quality':'hd'}",
     ISD_E_INVALID_VALUE, "quality", "Invalid value: 'hd'. " GPT_QUALITY},
    {"quality empty on gpt-image-2", "{'prompt':'x','model':'gpt-image-2','quality':''}",
     ISD_E_INVALID_VALUE, "quality", "Invalid value: ''. " GPT_QUALITY},
    {"quality standard on gpt-image-1-mini",
     "{'prompt':'x','model':'gpt-image-1-mini','quality':'standard'}", ISD_E_INVALID_VALUE,
     "quality", "Invalid value: 'standard'. " GPT_QUALITY},
    {"quality integer", "{'prompt':'x','model':'gpt-image-1','quality':1}", ISD_E_INVALID_TYPE,
     "quality", TYPE("quality", "one of 'low', 'medium', 'high', or 'auto'", "an integer")},
    {"quality hd on dall-e-2", "{'prompt':'x','model':'dall-e-2','quality':'hd'}",
     ISD_E_INVALID_VALUE, "quality", "Invalid value: 'hd'. Supported values are: 'standard'."},
    {"quality high without a model (dall-e-2)", "{'prompt':'x','quality':'high'}",
     ISD_E_INVALID_VALUE, "quality", "Invalid value: 'high'. Supported values are: 'standard'."},
    {"quality low on dall-e-3", "{'prompt':'x','model':'dall-e-3','quality':'low'}",
     ISD_E_INVALID_VALUE, "quality",
     "Invalid value: 'low'. Supported values are: 'standard' and 'hd'."},
    {"quality boolean on dall-e-3", "{'prompt':'x','model':'dall-e-3','quality':true}",
     ISD_E_INVALID_TYPE, "quality", TYPE("quality", "one of 'standard' or 'hd'", "a boolean")},

    /* response_format (DALL·E) */
    {"response_format unknown", "{'prompt':'x','model':'dall-e-2','response_format':'bogus'}",
     ISD_E_INVALID_VALUE, "response_format",
     "Invalid value: 'bogus'. Supported values are: 'url' and 'b64_json'."},
    {"response_format integer", "{'prompt':'x','model':'dall-e-3','response_format':5}",
     ISD_E_INVALID_TYPE, "response_format",
     TYPE("response_format", "one of 'url' or 'b64_json'", "an integer")},

    /* output_format */
    {"output_format unknown", "{'prompt':'x','model':'gpt-image-1','output_format':'gif'}",
     ISD_E_INVALID_VALUE, "output_format", "Invalid value: 'gif'. " FORMATS},
    {"output_format jpg", "{'prompt':'x','model':'gpt-image-1','output_format':'jpg'}",
     ISD_E_INVALID_VALUE, "output_format", "Invalid value: 'jpg'. " FORMATS},
    {"output_format upper case", "{'prompt':'x','model':'gpt-image-2','output_format':'PNG'}",
     ISD_E_INVALID_VALUE, "output_format", "Invalid value: 'PNG'. " FORMATS},
    {"output_format boolean", "{'prompt':'x','model':'gpt-image-1','output_format':false}",
     ISD_E_INVALID_TYPE, "output_format",
     TYPE("output_format", "one of 'png', 'webp', or 'jpeg'", "a boolean")},

    /* output_compression */
    {"output_compression above 100",
     "{'prompt':'x','model':'gpt-image-1','output_format':'jpeg','output_compression':101}",
     ISD_E_INT_ABOVE_MAX, "output_compression", ABOVE("output_compression", "100", "101")},
    {"output_compression below 0",
     "{'prompt':'x','model':'gpt-image-1','output_format':'webp','output_compression':-1}",
     ISD_E_INT_BELOW_MIN, "output_compression", BELOW("output_compression", "0", "-1")},
    {"output_compression string", "{'prompt':'x','model':'gpt-image-1','output_compression':'50'}",
     ISD_E_INVALID_TYPE, "output_compression",
     TYPE("output_compression", "an integer", "a string")},
    {"output_compression decimal",
     "{'prompt':'x','model':'gpt-image-1','output_format':'jpeg','output_compression':50.5}",
     ISD_E_INVALID_TYPE, "output_compression",
     TYPE("output_compression", "an integer", "a decimal number")},
    {"output_compression without a model selects GPT", "{'prompt':'x','output_compression':101}",
     ISD_E_INT_ABOVE_MAX, "output_compression", ABOVE("output_compression", "100", "101")},

    /* size: listed */
    {"size not listed (gpt-image-1)", "{'prompt':'x','model':'gpt-image-1','size':'2048x2048'}",
     ISD_E_INVALID_VALUE, "size", "Invalid value: '2048x2048'. " GPT_SIZES},
    {"size not listed (gpt-image-1.5)", "{'prompt':'x','model':'gpt-image-1.5','size':'1792x1024'}",
     ISD_E_INVALID_VALUE, "size", "Invalid value: '1792x1024'. " GPT_SIZES},
    {"size not listed (gpt-image-1-mini)",
     "{'prompt':'x','model':'gpt-image-1-mini','size':'256x256'}", ISD_E_INVALID_VALUE, "size",
     "Invalid value: '256x256'. " GPT_SIZES},
    {"size empty (gpt-image-1)", "{'prompt':'x','model':'gpt-image-1','size':''}",
     ISD_E_INVALID_VALUE, "size", "Invalid value: ''. " GPT_SIZES},
    {"size not listed (dall-e-2)", "{'prompt':'x','model':'dall-e-2','size':'1536x1024'}",
     ISD_E_INVALID_VALUE, "size", "Invalid value: '1536x1024'. " DALLE2_SIZES},
    {"no model falls back to dall-e-2 rules", "{'prompt':'x','size':'1536x1024'}",
     ISD_E_INVALID_VALUE, "size", "Invalid value: '1536x1024'. " DALLE2_SIZES},
    {"size not supported (dall-e-3)", "{'prompt':'x','model':'dall-e-3','size':'256x256'}",
     ISD_E_INVALID_SIZE, NULL, "The size is not supported by this model."},
    {"size with a space (dall-e-3)", "{'prompt':'x','model':'dall-e-3','size':'1024x1024 '}",
     ISD_E_INVALID_SIZE, NULL, "The size is not supported by this model."},
    {"size integer", "{'prompt':'x','model':'gpt-image-2','size':1024}", ISD_E_INVALID_TYPE, "size",
     TYPE("size", "a string", "an integer")},
    {"size array", "{'prompt':'x','model':'gpt-image-1','size':['1024x1024']}", ISD_E_INVALID_TYPE,
     "size", TYPE("size", "a string", "an array")},

    /* size: gpt-image-2 free sizes (§4.2) */
    {"free size not WxH", "{'prompt':'x','model':'gpt-image-2','size':'bogus'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size 'bogus'. " SIZE_FORMAT},
    {"free size 0x0", "{'prompt':'x','model':'gpt-image-2','size':'0x0'}", ISD_E_GEN_INVALID_VALUE,
     "size", "Invalid size '0x0'. " SIZE_FORMAT},
    {"free size 1024x0", "{'prompt':'x','model':'gpt-image-2','size':'1024x0'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '1024x0'. " SIZE_FORMAT},
    {"free size 0x1024", "{'prompt':'x','model':'gpt-image-2','size':'0x1024'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '0x1024'. " SIZE_FORMAT},
    {"free size capital X", "{'prompt':'x','model':'gpt-image-2','size':'1024X1024'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '1024X1024'. " SIZE_FORMAT},
    {"free size leading space", "{'prompt':'x','model':'gpt-image-2','size':' 1024x1024'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size ' 1024x1024'. " SIZE_FORMAT},
    {"free size trailing space", "{'prompt':'x','model':'gpt-image-2','size':'1024x1024 '}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '1024x1024 '. " SIZE_FORMAT},
    {"free size no height", "{'prompt':'x','model':'gpt-image-2','size':'1024x'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '1024x'. " SIZE_FORMAT},
    {"free size no width", "{'prompt':'x','model':'gpt-image-2','size':'x1024'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size 'x1024'. " SIZE_FORMAT},
    {"free size three numbers", "{'prompt':'x','model':'gpt-image-2','size':'1024x1024x16'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '1024x1024x16'. " SIZE_FORMAT},
    {"free size plus sign", "{'prompt':'x','model':'gpt-image-2','size':'+1024x1024'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '+1024x1024'. " SIZE_FORMAT},
    {"free size negative", "{'prompt':'x','model':'gpt-image-2','size':'-16x16'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '-16x16'. " SIZE_FORMAT},
    {"free size star", "{'prompt':'x','model':'gpt-image-2','size':'1024*1024'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '1024*1024'. " SIZE_FORMAT},
    {"free size exponent", "{'prompt':'x','model':'gpt-image-2','size':'1e3x1024'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '1e3x1024'. " SIZE_FORMAT},
    {"free size multiplication sign",
     "{'prompt':'x','model':'gpt-image-2','size':'1024\\u00d71024'}", ISD_E_GEN_INVALID_VALUE,
     "size",
     "Invalid size '1024\xC3\x97"
     "1024'. " SIZE_FORMAT},
    {"free size 'auto '", "{'prompt':'x','model':'gpt-image-2','size':'auto '}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size 'auto '. " SIZE_FORMAT},
    {"free size AUTO", "{'prompt':'x','model':'gpt-image-2','size':'AUTO'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size 'AUTO'. " SIZE_FORMAT},
    {"free size huge numbers",
     "{'prompt':'x','model':'gpt-image-2','size':'99999999999999999999x16'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '99999999999999999999x16'. " SIZE_FORMAT},
    {"free size not /16", "{'prompt':'x','model':'gpt-image-2','size':'9x9'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '9x9'. " SIZE_16},
    {"free size height not /16", "{'prompt':'x','model':'gpt-image-2','size':'1024x1000'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '1024x1000'. " SIZE_16},
    {"free size on the snapshot", "{'prompt':'x','model':'gpt-image-2-2026-04-21','size':'9x9'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '9x9'. " SIZE_16},
    {"free size edge over 3840", "{'prompt':'x','model':'gpt-image-2','size':'4096x1536'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '4096x1536'. " SIZE_EDGE},
    {"free size edge 3856", "{'prompt':'x','model':'gpt-image-2','size':'1296x3856'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '1296x3856'. " SIZE_EDGE},
    {"free size ratio over 3:1", "{'prompt':'x','model':'gpt-image-2','size':'3840x1024'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '3840x1024'. " SIZE_RATIO},
    {"free size ratio over 1:3", "{'prompt':'x','model':'gpt-image-2','size':'1024x3088'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '1024x3088'. " SIZE_RATIO},
    {"free size too few pixels", "{'prompt':'x','model':'gpt-image-2','size':'512x512'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '512x512'. " SIZE_PIXELS},
    {"free size just too few pixels", "{'prompt':'x','model':'gpt-image-2','size':'1008x640'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '1008x640'. " SIZE_PIXELS},
    {"free size too many pixels", "{'prompt':'x','model':'gpt-image-2','size':'3840x2176'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size '3840x2176'. " SIZE_PIXELS},

    /* moderation, background, style */
    {"moderation unknown", "{'prompt':'x','model':'gpt-image-1','moderation':'bogus'}",
     ISD_E_INVALID_VALUE, "moderation",
     "Invalid value: 'bogus'. Supported values are: 'auto' and 'low'."},
    {"moderation high", "{'prompt':'x','model':'gpt-image-2','moderation':'high'}",
     ISD_E_INVALID_VALUE, "moderation",
     "Invalid value: 'high'. Supported values are: 'auto' and 'low'."},
    {"moderation integer", "{'prompt':'x','model':'gpt-image-1','moderation':1}",
     ISD_E_INVALID_TYPE, "moderation", TYPE("moderation", "one of 'auto' or 'low'", "an integer")},
    {"background unknown", "{'prompt':'x','model':'gpt-image-1','background':'bogus'}",
     ISD_E_INVALID_VALUE, "background", "Invalid value: 'bogus'. " BACKGROUNDS},
    {"background white", "{'prompt':'x','model':'gpt-image-1.5','background':'white'}",
     ISD_E_INVALID_VALUE, "background", "Invalid value: 'white'. " BACKGROUNDS},
    {"background boolean", "{'prompt':'x','model':'gpt-image-1','background':true}",
     ISD_E_INVALID_TYPE, "background",
     TYPE("background", "one of 'transparent', 'opaque', or 'auto'", "a boolean")},
    {"style unknown (dall-e-3)", "{'prompt':'x','model':'dall-e-3','style':'bogus'}",
     ISD_E_INVALID_VALUE, "style",
     "Invalid value: 'bogus'. Supported values are: 'vivid' and 'natural'."},
    {"style integer (dall-e-3)", "{'prompt':'x','model':'dall-e-3','style':1}", ISD_E_INVALID_TYPE,
     "style", TYPE("style", "one of 'vivid' or 'natural'", "an integer")},

    /* user, stream, partial_images */
    {"user integer", "{'prompt':'x','model':'gpt-image-1','user':42}", ISD_E_INVALID_TYPE, "user",
     TYPE("user", "a string", "an integer")},
    {"user array", "{'prompt':'x','model':'gpt-image-1','user':['u']}", ISD_E_INVALID_TYPE, "user",
     TYPE("user", "a string", "an array")},
    {"user decimal on dall-e-2", "{'prompt':'x','model':'dall-e-2','user':1.5}", ISD_E_INVALID_TYPE,
     "user", TYPE("user", "a string", "a decimal number")},
    {"stream string", "{'prompt':'x','model':'gpt-image-1','stream':'true'}", ISD_E_INVALID_TYPE,
     "stream", TYPE("stream", "a boolean", "a string")},
    {"stream integer", "{'prompt':'x','model':'gpt-image-1','stream':1}", ISD_E_INVALID_TYPE,
     "stream", TYPE("stream", "a boolean", "an integer")},
    {"stream on dall-e-2", "{'prompt':'x','model':'dall-e-2','stream':true}", ISD_E_INVALID_VALUE,
     "stream", NOT_STREAM("dall-e-2")},
    {"stream on dall-e-3", "{'prompt':'x','model':'dall-e-3','stream':true}", ISD_E_INVALID_VALUE,
     "stream", NOT_STREAM("dall-e-3")},
    {"stream string on dall-e-2: type first", "{'prompt':'x','model':'dall-e-2','stream':'yes'}",
     ISD_E_INVALID_TYPE, "stream", TYPE("stream", "a boolean", "a string")},
    {"partial_images above 3", "{'prompt':'x','model':'gpt-image-1','partial_images':4}",
     ISD_E_INT_ABOVE_MAX, "partial_images", ABOVE("partial_images", "3", "4")},
    {"partial_images below 0", "{'prompt':'x','model':'gpt-image-1','partial_images':-1}",
     ISD_E_INT_BELOW_MIN, "partial_images", BELOW("partial_images", "0", "-1")},
    {"partial_images string", "{'prompt':'x','model':'gpt-image-1','partial_images':'1'}",
     ISD_E_INVALID_TYPE, "partial_images", TYPE("partial_images", "an integer", "a string")},
    {"partial_images decimal", "{'prompt':'x','model':'gpt-image-1','partial_images':1.5}",
     ISD_E_INVALID_TYPE, "partial_images",
     TYPE("partial_images", "an integer", "a decimal number")},

    /* combinations */
    {"png with compression below 100",
     "{'prompt':'x','model':'gpt-image-1','output_format':'png','output_compression':50}",
     ISD_E_PNG_COMPRESSION, NULL, PNG_COMP},
    {"default png with compression below 100",
     "{'prompt':'x','model':'gpt-image-1','output_compression':99}", ISD_E_PNG_COMPRESSION, NULL,
     PNG_COMP},
    {"png with compression 0", "{'prompt':'x','model':'gpt-image-2','output_compression':0}",
     ISD_E_PNG_COMPRESSION, NULL, PNG_COMP},
    {"transparent on gpt-image-2",
     "{'prompt':'x','model':'gpt-image-2','background':'transparent'}", ISD_E_GEN_INVALID_VALUE,
     "background", NO_TRANSP},
    {"transparent on the gpt-image-2 snapshot",
     "{'prompt':'x','model':'gpt-image-2-2026-04-21','background':'transparent'}",
     ISD_E_GEN_INVALID_VALUE, "background", NO_TRANSP},
    {"transparent with jpeg",
     "{'prompt':'x','model':'gpt-image-1','background':'transparent','output_format':'jpeg'}",
     ISD_E_INVALID_VALUE, "background", TRANSP_JPEG},
    {"transparent with jpeg and compression",
     "{'prompt':'x','model':'gpt-image-1-mini','background':'transparent','output_format':'jpeg','"
     "output_compression':50}",
     ISD_E_INVALID_VALUE, "background", TRANSP_JPEG},
    {"transparent with jpeg on gpt-image-2: not supported first",
     "{'prompt':'x','model':'gpt-image-2','background':'transparent','output_format':'jpeg'}",
     ISD_E_GEN_INVALID_VALUE, "background", NO_TRANSP},
    {"transparent with jpeg, no model",
     "{'prompt':'x','background':'transparent','output_format':'jpeg'}", ISD_E_INVALID_VALUE,
     "background", TRANSP_JPEG},

    /* the recorded order with two faults (§7.3) */
    {"order: unknown key before prompt", "{'prompt':'','model':'gpt-image-1','zzz':1}",
     ISD_E_UNKNOWN_PARAM, "zzz", UNKNOWN("zzz")},
    {"order: unknown key before model", "{'prompt':'x','model':'bad','zzz':1}", ISD_E_UNKNOWN_PARAM,
     "zzz", UNKNOWN("zzz")},
    {"order: model before prompt", "{'model':'bad'}", ISD_E_NO_SUCH_MODEL, "model",
     "The model 'bad' does not exist."},
    {"order: model type before prompt type", "{'model':5,'prompt':5}", ISD_E_INVALID_TYPE, "model",
     TYPE("model", "a string", "an integer")},
    {"order: model parameters before prompt", "{'model':'gpt-image-1','response_format':'url'}",
     ISD_E_UNKNOWN_PARAM, "response_format", UNKNOWN("response_format")},
    {"order: prompt before n", "{'prompt':'','model':'gpt-image-1','n':0}", ISD_E_EMPTY_STRING,
     "prompt", EMPTY_PROMPT},
    {"order: prompt type before n type", "{'prompt':5,'model':'gpt-image-1','n':1.5}",
     ISD_E_INVALID_TYPE, "prompt", TYPE("prompt", "a string", "an integer")},
    {"order: n before quality", "{'prompt':'x','model':'gpt-image-1','n':0,'quality':'ultra'}",
     ISD_E_INT_BELOW_MIN, "n", BELOW("n", "1", "0")},
    {"order: dall-e-3 n before quality", "{'prompt':'x','model':'dall-e-3','n':2,'quality':'low'}",
     ISD_E_INVALID_REQUEST, NULL, "You must provide n=1 for this model."},
    {"order: quality before output_compression",
     "{'prompt':'x','model':'gpt-image-1','quality':'ultra','output_compression':101}",
     ISD_E_INVALID_VALUE, "quality", "Invalid value: 'ultra'. " GPT_QUALITY},
    {"order: quality before output_format",
     "{'prompt':'x','model':'gpt-image-1','output_format':'gif','quality':'ultra'}",
     ISD_E_INVALID_VALUE, "quality", "Invalid value: 'ultra'. " GPT_QUALITY},
    {"order: response_format before size",
     "{'prompt':'x','model':'dall-e-2','size':'1x1','response_format':'bogus'}",
     ISD_E_INVALID_VALUE, "response_format",
     "Invalid value: 'bogus'. Supported values are: 'url' and 'b64_json'."},
    {"order: output_format before output_compression",
     "{'prompt':'x','model':'gpt-image-1','output_compression':101,'output_format':'gif'}",
     ISD_E_INVALID_VALUE, "output_format", "Invalid value: 'gif'. " FORMATS},
    {"order: output_compression before size",
     "{'prompt':'x','model':'gpt-image-2','output_compression':101,'size':'bogus'}",
     ISD_E_INT_ABOVE_MAX, "output_compression", ABOVE("output_compression", "100", "101")},
    {"order: size before moderation",
     "{'prompt':'x','model':'gpt-image-2','moderation':'bogus','size':'bogus'}",
     ISD_E_GEN_INVALID_VALUE, "size", "Invalid size 'bogus'. " SIZE_FORMAT},
    {"order: moderation before background",
     "{'prompt':'x','model':'gpt-image-1','background':'bogus','moderation':'bogus'}",
     ISD_E_INVALID_VALUE, "moderation",
     "Invalid value: 'bogus'. Supported values are: 'auto' and 'low'."},
    {"order: background before user",
     "{'prompt':'x','model':'gpt-image-1','user':42,'background':'bogus'}", ISD_E_INVALID_VALUE,
     "background", "Invalid value: 'bogus'. " BACKGROUNDS},
    {"order: style before user", "{'prompt':'x','model':'dall-e-3','user':42,'style':'bogus'}",
     ISD_E_INVALID_VALUE, "style",
     "Invalid value: 'bogus'. Supported values are: 'vivid' and 'natural'."},
    {"order: user before stream", "{'prompt':'x','model':'gpt-image-1','stream':'x','user':42}",
     ISD_E_INVALID_TYPE, "user", TYPE("user", "a string", "an integer")},
    {"order: stream before partial_images",
     "{'prompt':'x','model':'gpt-image-1','partial_images':4,'stream':'x'}", ISD_E_INVALID_TYPE,
     "stream", TYPE("stream", "a boolean", "a string")},
    {"order: partial_images before combinations",
     "{'prompt':'x','model':'gpt-image-1','output_compression':50,'partial_images':4}",
     ISD_E_INT_ABOVE_MAX, "partial_images", ABOVE("partial_images", "3", "4")},
    {"order: png compression before transparency",
     "{'prompt':'x','model':'gpt-image-2','background':'transparent','output_compression':50}",
     ISD_E_PNG_COMPRESSION, NULL, PNG_COMP},
    {"order: partial_images is a GPT-only parameter, refused before stream on dall-e",
     "{'prompt':'x','model':'dall-e-2','stream':true,'partial_images':9}", ISD_E_UNKNOWN_PARAM,
     "partial_images", "Unknown parameter: 'partial_images'."},

    /* errors after the prompt and the user were copied: both must be freed (LSan) */
    {"user kept, then a stream error",
     "{'prompt':'x','model':'gpt-image-1','user':'u','stream':'x'}", ISD_E_INVALID_TYPE, "stream",
     TYPE("stream", "a boolean", "a string")},
    {"user kept, then a partial_images error",
     "{'prompt':'x','model':'gpt-image-1','user':'u','partial_images':7}", ISD_E_INT_ABOVE_MAX,
     "partial_images", ABOVE("partial_images", "3", "7")},
    {"user kept, then a combination error",
     "{'prompt':'x','model':'gpt-image-1','user':'u','output_compression':5}",
     ISD_E_PNG_COMPRESSION, NULL, PNG_COMP},
    {"user kept, then stream on dall-e-3",
     "{'prompt':'x','model':'dall-e-3','user':'u','stream':true}", ISD_E_INVALID_VALUE, "stream",
     NOT_STREAM("dall-e-3")},

    /* the body itself */
    {"array body", "[1, 2]", ISD_E_INVALID_TYPE, NULL,
     "Invalid type for request body: expected an object, but got an array instead."},
    {"empty array body", "[]", ISD_E_INVALID_TYPE, NULL,
     "Invalid type for request body: expected an object, but got an array instead."},
    {"malformed JSON", "{'prompt': 'x',", ISD_E_BAD_JSON, NULL, BAD_JSON_MSG},
    {"empty body", "", ISD_E_BAD_JSON, NULL, BAD_JSON_MSG},
    {"trailing garbage", "{'prompt':'x'} x", ISD_E_BAD_JSON, NULL, BAD_JSON_MSG},
    {"two objects", "{'prompt':'x'}{}", ISD_E_BAD_JSON, NULL, BAD_JSON_MSG},
    {"invalid UTF-8 in a string", "{'prompt':'\xFF'}", ISD_E_BAD_JSON, NULL, BAD_JSON_MSG},
    {"overlong UTF-8 in a string", "{'prompt':'\xC0\xAF'}", ISD_E_BAD_JSON, NULL, BAD_JSON_MSG},
    {"lone surrogate escape", "{'prompt':'\\ud800'}", ISD_E_BAD_JSON, NULL, BAD_JSON_MSG},
    {"single quotes are not JSON", "{\\u0027prompt\\u0027:1}", ISD_E_BAD_JSON, NULL, BAD_JSON_MSG},
    /* jansson refuses \u0000 in strings without JSON_ALLOW_NUL: the whole body is "not JSON" */
    {"escaped NUL in the prompt", "{'prompt':'a\\u0000b','model':'gpt-image-1'}", ISD_E_BAD_JSON,
     NULL, BAD_JSON_MSG},
};

static void expect_error(const char *name, const char *body, size_t len, enum isd_err_id id,
                         const char *param, const char *message)
{
    struct isd_images_request req;
    struct isd_error err;
    memset(&err, 0x5A, sizeof err);
    memset(&req, 0x5A, sizeof req);
    int rc = isd_api_parse_generation(body, len, &resolver, &req, &err);
    bool ok = rc == -(int)id && err.id == id;
    if (ok && param)
        ok = strcmp(err.param, param) == 0;
    if (ok && !param)
        ok = err.param[0] == '\0';
    if (ok && message)
        ok = strcmp(err.message, message) == 0;
    bool clean = rc >= 0 || (req.prompt == NULL && req.user == NULL);
    if (rc >= 0)
        isd_images_request_release(&req);
    if (!ok || !clean) {
        print_error("case '%s'\n  body:     %.300s\n  expected: %s param=%s\n            %s\n"
                    "  got:      rc=%d %s param=%s%s\n            %s\n",
                    name, body, isd_err_name(id), param ? param : "(null)",
                    message ? message : "(any)", rc, rc < 0 ? isd_err_name(err.id) : "OK",
                    rc < 0 ? (err.param[0] ? err.param : "(null)") : "-",
                    clean ? "" : " (request not released)", rc < 0 ? err.message : "");
        fail();
    }
    /* release after a failed parse is harmless */
    isd_images_request_release(&req);
}

static void error_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
        const struct err_case *c = &err_cases[i];
        char *body = body_of(c->body);
        expect_error(c->name, body, strlen(body), c->id, c->param, c->message);
        free(body);
    }
}

/* ---- success table: body → resolved fields ("key=value ...", only the keys listed) ---- */

struct ok_case {
    const char *name;
    const char *body;
    const char *expect;
};

#define GPT_DEFAULTS                                                                               \
    "n=1 quality_requested=auto size=1024x1024 width=1024 height=1024 size_requested=auto "        \
    "output_format=png compression=100 transparent=0 background=auto moderation=auto style=null "  \
    "stream=0 partials=0 user=null prompt=x prompt_chars=1 prompt_len=1 endpoint=generations"

static const struct ok_case ok_cases[] = {
    /* every profile's defaults, quality auto per profile (§4.1) */
    {"gpt-image-1 defaults", "{'prompt':'x','model':'gpt-image-1'}",
     "model=gpt-image-1 profile=gpt-image-1 quality=medium " GPT_DEFAULTS},
    {"gpt-image-1-mini defaults", "{'prompt':'x','model':'gpt-image-1-mini'}",
     "model=gpt-image-1-mini profile=gpt-image-1-mini quality=high " GPT_DEFAULTS},
    {"gpt-image-1.5 defaults", "{'prompt':'x','model':'gpt-image-1.5'}",
     "model=gpt-image-1.5 profile=gpt-image-1.5 quality=medium " GPT_DEFAULTS},
    {"gpt-image-2 defaults", "{'prompt':'x','model':'gpt-image-2'}",
     "model=gpt-image-2 profile=gpt-image-2 quality=medium " GPT_DEFAULTS},
    {"chatgpt-image-latest is gpt-image-1.5", "{'prompt':'x','model':'chatgpt-image-latest'}",
     "model=chatgpt-image-latest profile=gpt-image-1.5 quality=medium " GPT_DEFAULTS},
    {"gpt-image-2 snapshot is gpt-image-2", "{'prompt':'x','model':'gpt-image-2-2026-04-21'}",
     "model=gpt-image-2-2026-04-21 profile=gpt-image-2 quality=medium " GPT_DEFAULTS},
    {"dall-e-2 defaults", "{'prompt':'x','model':'dall-e-2'}",
     "model=dall-e-2 profile=dall-e-2 n=1 quality=standard quality_requested=auto rf=url "
     "size=1024x1024 width=1024 height=1024 output_format=png style=null stream=0 partials=0 "
     "user=null"},
    {"dall-e-3 defaults", "{'prompt':'x','model':'dall-e-3'}",
     "model=dall-e-3 profile=dall-e-3 n=1 quality=standard rf=url size=1024x1024 style=vivid "
     "output_format=png stream=0"},

    /* default model */
    {"no model: default_model", "{'prompt':'x'}", "model=dall-e-2 profile=dall-e-2"},
    {"null model: default_model", "{'prompt':'x','model':null}", "model=dall-e-2 profile=dall-e-2"},
    {"output_format selects GPT", "{'prompt':'x','output_format':'png'}",
     "model=gpt-image-1 profile=gpt-image-1 quality=medium"},
    {"output_compression selects GPT", "{'prompt':'x','output_compression':100}",
     "model=gpt-image-1 compression=100"},
    {"background selects GPT", "{'prompt':'x','background':'opaque'}",
     "model=gpt-image-1 background=opaque transparent=0"},
    {"moderation selects GPT", "{'prompt':'x','moderation':'low'}",
     "model=gpt-image-1 moderation=low"},
    {"stream false selects GPT", "{'prompt':'x','stream':false}", "model=gpt-image-1 stream=0"},
    {"partial_images 0 selects GPT", "{'prompt':'x','partial_images':0}",
     "model=gpt-image-1 partials=0"},
    {"null GPT-only parameters keep default_model",
     "{'prompt':'x','output_format':null,'output_compression':null,'background':null,"
     "'moderation':null,'stream':null,'partial_images':null}",
     "model=dall-e-2 profile=dall-e-2"},
    {"quality does not select GPT", "{'prompt':'x','quality':'standard'}",
     "model=dall-e-2 quality=standard quality_requested=standard"},
    {"size does not select GPT", "{'prompt':'x','size':'256x256'}", "model=dall-e-2 size=256x256"},

    /* null counts as omitted */
    {"nulls on gpt-image-1",
     "{'prompt':'x','model':'gpt-image-1','n':null,'partial_images':null,'output_compression':null,"
     "'quality':null,'size':null,'background':null,'output_format':null,'moderation':null,"
     "'stream':null,'user':null}",
     "model=gpt-image-1 quality=medium " GPT_DEFAULTS},
    {"nulls on dall-e-3",
     "{'prompt':'x','model':'dall-e-3','n':null,'quality':null,'size':null,'style':null,"
     "'response_format':null,'user':null,'stream':null,'partial_images':null}",
     "model=dall-e-3 n=1 quality=standard size=1024x1024 style=vivid rf=url user=null stream=0"},
    {"GPT-only nulls on dall-e-2",
     "{'prompt':'x','model':'dall-e-2','output_format':null,'background':null,'style':null,"
     "'moderation':null,'output_compression':null}",
     "model=dall-e-2 output_format=png style=null"},

    /* prompt */
    {"whitespace prompt", "{'prompt':'   ','model':'gpt-image-1','quality':'low'}",
     "prompt=\x01 prompt_chars=3 prompt_len=3 quality=low"},
    {"newline prompt", "{'prompt':'\\n\\t','model':'gpt-image-1'}", "prompt_chars=2 prompt_len=2"},
    {"unicode prompt", "{'prompt':'\\u00e9\\ud83c\\udf89\xE2\x82\xAC','model':'gpt-image-1'}",
     "prompt_chars=3 prompt_len=9"},
    {"literal U+FFFD prompt", "{'prompt':'\xEF\xBF\xBD','model':'gpt-image-1'}",
     "prompt_chars=1 prompt_len=3"},

    /* n */
    {"n 10 on gpt-image-1", "{'prompt':'x','model':'gpt-image-1','n':10}", "n=10"},
    {"n 10 on dall-e-2", "{'prompt':'x','model':'dall-e-2','n':10}", "n=10"},
    {"n 1 on dall-e-3", "{'prompt':'x','model':'dall-e-3','n':1}", "n=1"},

    /* quality */
    {"quality auto explicit", "{'prompt':'x','model':'gpt-image-1-mini','quality':'auto'}",
     "quality=high quality_requested=auto"},
    {"quality low", "{'prompt':'x','model':'gpt-image-2','quality':'low'}",
     "quality=low quality_requested=low"},
    {"quality high", "{'prompt':'x','model':'gpt-image-1','quality':'high'}", "quality=high"},
    {"quality medium", "{'prompt':'x','model':'gpt-image-1-mini','quality':'medium'}",
     "quality=medium"},
    {"dall-e-2 quality auto", "{'prompt':'x','model':'dall-e-2','quality':'auto'}",
     "quality=standard quality_requested=auto"},
    {"dall-e-2 quality standard", "{'prompt':'x','model':'dall-e-2','quality':'standard'}",
     "quality=standard quality_requested=standard"},
    {"dall-e-3 everything",
     "{'prompt':'x','model':'dall-e-3','quality':'hd','style':'natural','size':'1792x1024',"
     "'response_format':'b64_json','user':'u'}",
     "quality=hd style=natural size=1792x1024 width=1792 height=1024 rf=b64_json user=u"},
    {"dall-e-3 auto quality", "{'prompt':'x','model':'dall-e-3','quality':'auto'}",
     "quality=standard"},
    {"dall-e-3 portrait", "{'prompt':'x','model':'dall-e-3','size':'1024x1792'}",
     "size=1024x1792 width=1024 height=1792"},
    {"dall-e-2 sizes and b64",
     "{'prompt':'x','model':'dall-e-2','size':'256x256','response_format':'b64_json'}",
     "size=256x256 width=256 height=256 rf=b64_json size_requested=256x256"},
    {"dall-e-2 512", "{'prompt':'x','model':'dall-e-2','size':'512x512','response_format':'url'}",
     "size=512x512 rf=url"},
    {"dall-e-2 size auto", "{'prompt':'x','model':'dall-e-2','size':'auto'}",
     "size=1024x1024 size_requested=auto"},
    {"dall-e-2 stream false", "{'prompt':'x','model':'dall-e-2','stream':false}", "stream=0"},

    /* GPT options */
    {"everything on gpt-image-1",
     "{'prompt':'x','model':'gpt-image-1','n':3,'quality':'low','output_format':'jpeg',"
     "'output_compression':0,'size':'1536x1024','moderation':'low','background':'opaque',"
     "'user':'u1','stream':true,'partial_images':3}",
     "n=3 quality=low output_format=jpeg compression=0 size=1536x1024 width=1536 height=1024 "
     "size_requested=1536x1024 moderation=low background=opaque transparent=0 user=u1 stream=1 "
     "partials=3"},
    {"portrait gpt-image-1.5", "{'prompt':'x','model':'gpt-image-1.5','size':'1024x1536'}",
     "size=1024x1536 width=1024 height=1536"},
    {"size auto gpt-image-1", "{'prompt':'x','model':'gpt-image-1','size':'auto'}",
     "size=1024x1024 size_requested=auto"},
    {"transparent png",
     "{'prompt':'x','model':'gpt-image-1','background':'transparent','output_format':'png'}",
     "transparent=1 background=transparent output_format=png"},
    {"transparent webp with compression",
     "{'prompt':'x','model':'gpt-image-1-mini','background':'transparent','output_format':'webp','"
     "output_compression':50}",
     "transparent=1 output_format=webp compression=50"},
    {"background auto is opaque", "{'prompt':'x','model':'gpt-image-1','background':'auto'}",
     "transparent=0 background=auto"},
    {"jpeg with 100",
     "{'prompt':'x','model':'gpt-image-1','output_format':'jpeg','output_compression':100}",
     "output_format=jpeg compression=100"},
    {"webp with 0",
     "{'prompt':'x','model':'gpt-image-2','output_format':'webp','output_compression':0}",
     "output_format=webp compression=0"},
    {"png with 100",
     "{'prompt':'x','model':'gpt-image-1','output_format':'png','output_compression':100}",
     "output_format=png compression=100"},
    {"partial_images without stream", "{'prompt':'x','model':'gpt-image-1','partial_images':2}",
     "partials=2 stream=0"},
    {"empty user", "{'prompt':'x','model':'gpt-image-1','user':''}", "user="},

    /* gpt-image-2 free sizes at the limits */
    {"free 1024x1024", "{'prompt':'x','model':'gpt-image-2','size':'1024x1024'}",
     "size=1024x1024 width=1024 height=1024"},
    {"free 2048x1152", "{'prompt':'x','model':'gpt-image-2','size':'2048x1152'}",
     "size=2048x1152 width=2048 height=1152 size_requested=2048x1152"},
    {"free max pixels 3840x2160", "{'prompt':'x','model':'gpt-image-2','size':'3840x2160'}",
     "size=3840x2160 width=3840 height=2160"},
    {"free max pixels 2160x3840", "{'prompt':'x','model':'gpt-image-2','size':'2160x3840'}",
     "size=2160x3840"},
    {"free min pixels 1024x640", "{'prompt':'x','model':'gpt-image-2','size':'1024x640'}",
     "size=1024x640 width=1024 height=640"},
    {"free min pixels 640x1024", "{'prompt':'x','model':'gpt-image-2','size':'640x1024'}",
     "size=640x1024"},
    {"free ratio 3:1", "{'prompt':'x','model':'gpt-image-2','size':'3072x1024'}", "size=3072x1024"},
    {"free ratio 1:3", "{'prompt':'x','model':'gpt-image-2','size':'1024x3072'}", "size=1024x3072"},
    {"free 3:1 at the edge", "{'prompt':'x','model':'gpt-image-2','size':'3840x1280'}",
     "size=3840x1280"},
    {"free auto", "{'prompt':'x','model':'gpt-image-2','size':'auto'}",
     "size=1024x1024 size_requested=auto"},
    {"free on the snapshot", "{'prompt':'x','model':'gpt-image-2-2026-04-21','size':'1536x1024'}",
     "size=1536x1024"},

    /* JSON shape */
    {"whitespace around the body", "\n\t{ 'prompt' : 'x' , 'model' : 'gpt-image-1' }\n ",
     "model=gpt-image-1"},
};

static void field_text(const struct isd_images_request *r, const char *key, char *out, size_t cap)
{
    if (strcmp(key, "model") == 0)
        snprintf(out, cap, "%s", r->model);
    else if (strcmp(key, "profile") == 0)
        snprintf(out, cap, "%s", r->profile ? r->profile->name : "NULL");
    else if (strcmp(key, "endpoint") == 0)
        snprintf(out, cap, "%s", r->endpoint == ISD_EP_GENERATIONS ? "generations" : "other");
    else if (strcmp(key, "n") == 0)
        snprintf(out, cap, "%d", r->n);
    else if (strcmp(key, "quality") == 0)
        snprintf(out, cap, "%s", r->quality ? r->quality : "NULL");
    else if (strcmp(key, "quality_requested") == 0)
        snprintf(out, cap, "%s", r->quality_requested ? r->quality_requested : "NULL");
    else if (strcmp(key, "size") == 0)
        snprintf(out, cap, "%s", r->size);
    else if (strcmp(key, "width") == 0)
        snprintf(out, cap, "%d", r->width);
    else if (strcmp(key, "height") == 0)
        snprintf(out, cap, "%d", r->height);
    else if (strcmp(key, "size_requested") == 0)
        snprintf(out, cap, "%s", r->size_requested);
    else if (strcmp(key, "output_format") == 0)
        snprintf(out, cap, "%s", isd_format_name(r->output_format));
    else if (strcmp(key, "compression") == 0)
        snprintf(out, cap, "%d", r->output_compression);
    else if (strcmp(key, "transparent") == 0)
        snprintf(out, cap, "%d", r->transparent);
    else if (strcmp(key, "background") == 0)
        snprintf(out, cap, "%s", r->background_requested ? r->background_requested : "NULL");
    else if (strcmp(key, "moderation") == 0)
        snprintf(out, cap, "%s", r->moderation ? r->moderation : "NULL");
    else if (strcmp(key, "style") == 0)
        snprintf(out, cap, "%s", r->style ? r->style : "null");
    else if (strcmp(key, "rf") == 0)
        snprintf(out, cap, "%s", r->response_format == ISD_RF_URL ? "url" : "b64_json");
    else if (strcmp(key, "stream") == 0)
        snprintf(out, cap, "%d", r->stream);
    else if (strcmp(key, "partials") == 0)
        snprintf(out, cap, "%d", r->partial_images);
    else if (strcmp(key, "user") == 0)
        snprintf(out, cap, "%s", r->user ? r->user : "null");
    else if (strcmp(key, "prompt") == 0)
        /* \x01 stands for "all spaces" in the table */
        snprintf(out, cap, "%s",
                 r->prompt && r->prompt[0] == ' ' && strspn(r->prompt, " ") == strlen(r->prompt)
                     ? "\x01"
                     : (r->prompt ? r->prompt : "NULL"));
    else if (strcmp(key, "prompt_chars") == 0)
        snprintf(out, cap, "%zu", r->prompt_chars);
    else if (strcmp(key, "prompt_len") == 0)
        snprintf(out, cap, "%zu", r->prompt_len);
    else
        snprintf(out, cap, "<unknown key %s>", key);
}

static int check_fields(const char *name, const struct isd_images_request *r, const char *expect)
{
    int bad = 0;
    char *list = strdup(expect);
    assert_non_null(list);
    char *save = NULL;
    for (char *tok = strtok_r(list, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        assert_non_null(eq);
        *eq = '\0';
        char got[256];
        field_text(r, tok, got, sizeof got);
        if (strcmp(got, eq + 1) != 0) {
            print_error("case '%s': %s = '%s', expected '%s'\n", name, tok, got, eq + 1);
            bad++;
        }
    }
    free(list);
    return bad;
}

static void ok_table(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        const struct ok_case *c = &ok_cases[i];
        char *body = body_of(c->body);
        struct isd_images_request req;
        struct isd_error err;
        int rc = isd_api_parse_generation(body, strlen(body), &resolver, &req, &err);
        if (rc < 0) {
            print_error("case '%s': refused: %s %s (param %s)\n", c->name, isd_err_name(err.id),
                        err.message, err.param);
            bad++;
        } else {
            bad += check_fields(c->name, &req, c->expect);
            /* invariants of every accepted request */
            if (!req.prompt || strlen(req.prompt) != req.prompt_len || req.n < 1 ||
                req.n > req.profile->max_n || req.width <= 0 || req.height <= 0) {
                print_error("case '%s': invariant broken\n", c->name);
                bad++;
            }
            if (!req.profile->gpt && req.output_format != ISD_FMT_PNG) {
                print_error("case '%s': DALL-E output_format not png\n", c->name);
                bad++;
            }
            isd_images_request_release(&req);
            assert_null(req.prompt);
            assert_null(req.user);
            isd_images_request_release(&req); /* twice is harmless */
        }
        free(body);
    }
    assert_int_equal(bad, 0);
}

/* ---- bodies built at run time ---- */

static char *prompt_body(const char *model, const char *unit, size_t count)
{
    size_t ulen = strlen(unit);
    size_t cap = 64 + strlen(model) + ulen * count;
    char *b = malloc(cap);
    assert_non_null(b);
    size_t n = (size_t)snprintf(b, cap, "{\"model\":\"%s\",\"prompt\":\"", model);
    for (size_t i = 0; i < count; i++) {
        memcpy(b + n, unit, ulen);
        n += ulen;
    }
    memcpy(b + n, "\"}", 3);
    return b;
}

static void prompt_length_limits(void **state)
{
    (void)state;
    static const struct {
        const char *model;
        int max;
    } limits[] = {
        {"dall-e-2", 1000},
        {"dall-e-3", 4000},
        {"gpt-image-1", 32000},
        {"gpt-image-1-mini", 32000},
        {"gpt-image-1.5", 32000},
        {"gpt-image-2", 32000},
        {"chatgpt-image-latest", 32000},
        {"gpt-image-2-2026-04-21", 32000},
    };
    /* one code point as 1, 2, 3 and 4 bytes, and as a JSON escape */
    static const struct {
        const char *unit;
        size_t bytes;
    } units[] = {{"a", 1},       {"\xC3\xA9", 2},      {"\xE2\x82\xAC", 3}, {"\xF0\x9D\x84\x9E", 4},
                 {"\\u00e9", 2}, {"\\ud834\\udd1e", 4}};
    for (size_t m = 0; m < sizeof limits / sizeof limits[0]; m++) {
        for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
            size_t max = (size_t)limits[m].max;
            /* exactly the maximum is accepted (inclusive), counted in code points */
            char *body = prompt_body(limits[m].model, units[u].unit, max);
            struct isd_images_request req;
            struct isd_error err;
            int rc = isd_api_parse_generation(body, strlen(body), &resolver, &req, &err);
            if (rc < 0)
                print_error("%s: %zu x '%s' refused: %s\n", limits[m].model, max, units[u].unit,
                            err.message);
            assert_int_equal(rc, 0);
            assert_int_equal(req.prompt_chars, max);
            assert_int_equal(req.prompt_len, max * units[u].bytes);
            isd_images_request_release(&req);
            free(body);

            body = prompt_body(limits[m].model, units[u].unit, max + 1);
            char msg[256];
            snprintf(msg, sizeof msg,
                     "Invalid 'prompt': string too long. Expected a string with maximum length "
                     "%zu, but got a string with length %zu instead.",
                     max, max + 1);
            expect_error("prompt one over", body, strlen(body), ISD_E_STRING_TOO_LONG, "prompt",
                         msg);
            free(body);
        }
    }
    /* the recorded example (§7.3) */
    char *body = prompt_body("gpt-image-1", "a", 50733);
    expect_error("prompt 50733", body, strlen(body), ISD_E_STRING_TOO_LONG, "prompt",
                 "Invalid 'prompt': string too long. Expected a string with maximum length "
                 "32000, but got a string with length 50733 instead.");
    free(body);
}

/* Client-chosen text quoted in messages is cut at 256 bytes (on a UTF-8 boundary) + "...". */
static void long_values_are_quoted_cut(void **state)
{
    (void)state;
    char value[400], body[600], msg[600];

    memset(value, 'm', 300);
    value[300] = '\0';
    snprintf(body, sizeof body, "{\"prompt\":\"x\",\"model\":\"%s\"}", value);
    snprintf(msg, sizeof msg, "The model '%.256s...' does not exist.", value);
    expect_error("long model", body, strlen(body), ISD_E_NO_SUCH_MODEL, "model", msg);

    memset(value, '1', 300);
    snprintf(body, sizeof body, "{\"prompt\":\"x\",\"model\":\"gpt-image-2\",\"size\":\"%s\"}",
             value);
    snprintf(msg, sizeof msg, "Invalid size '%.256s...'. " SIZE_FORMAT, value);
    expect_error("long free size", body, strlen(body), ISD_E_GEN_INVALID_VALUE, "size", msg);

    snprintf(body, sizeof body, "{\"prompt\":\"x\",\"model\":\"gpt-image-1\",\"quality\":\"%s\"}",
             value);
    snprintf(msg, sizeof msg, "Invalid value: '%.256s...'. " GPT_QUALITY, value);
    expect_error("long quality", body, strlen(body), ISD_E_INVALID_VALUE, "quality", msg);

    /* 'é' is 2 bytes: 256 bytes would split the 129th, so the cut keeps 255 */
    size_t n = 0;
    for (int i = 0; i < 150; i++) {
        value[n++] = '\xC3';
        value[n++] = '\xA9';
    }
    value[n] = '\0';
    snprintf(body, sizeof body, "{\"prompt\":\"x\",\"model\":\"z%s\"}", value);
    snprintf(msg, sizeof msg, "The model 'z%.254s...' does not exist.", value);
    expect_error("long UTF-8 model", body, strlen(body), ISD_E_NO_SUCH_MODEL, "model", msg);

    memset(value, 'k', 300);
    value[300] = '\0';
    snprintf(body, sizeof body, "{\"prompt\":\"x\",\"%s\":1}", value);
    snprintf(msg, sizeof msg, "Unknown parameter: '%.256s...'.", value);
    char param[ISD_ERR_PARAM_MAX]; /* the param is cut to its field */
    memcpy(param, value, sizeof param - 1);
    param[sizeof param - 1] = '\0';
    expect_error("long unknown key", body, strlen(body), ISD_E_UNKNOWN_PARAM, param, msg);
}

/* The body is not NUL-terminated: validation reads exactly `len` bytes. */
static void body_is_not_nul_terminated(void **state)
{
    (void)state;
    const char text[] = "{\"prompt\":\"x\",\"model\":\"gpt-image-1\"}";
    size_t n = sizeof text - 1;
    char *exact = malloc(n);
    memcpy(exact, text, n);
    struct isd_images_request req;
    struct isd_error err;
    assert_int_equal(isd_api_parse_generation(exact, n, &resolver, &req, &err), 0);
    assert_string_equal(req.model, "gpt-image-1");
    isd_images_request_release(&req);
    /* a prefix is a different (broken) body */
    expect_error("prefix", exact, n - 1, ISD_E_BAD_JSON, NULL, BAD_JSON_MSG);
    free(exact);
}

static void deep_nesting(void **state)
{
    (void)state;
    /* a deep but parseable value is a plain type error */
    size_t depth = 500;
    char *body = malloc(2 * depth + 64);
    size_t n = (size_t)sprintf(body, "{\"prompt\":\"x\",\"user\":");
    for (size_t i = 0; i < depth; i++)
        body[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        body[n++] = ']';
    body[n++] = '}';
    expect_error("deep user", body, n, ISD_E_INVALID_TYPE, "user",
                 TYPE("user", "a string", "an array"));
    free(body);

    /* beyond the parser's depth limit it is not JSON we accept; nothing crashes or leaks */
    depth = 100000;
    body = malloc(depth + 64);
    n = (size_t)sprintf(body, "{\"prompt\":\"x\",\"user\":");
    memset(body + n, '[', depth);
    n += depth;
    expect_error("very deep", body, n, ISD_E_BAD_JSON, NULL, BAD_JSON_MSG);
    free(body);
}

/* Regression test (fixed): on DALL·E models `partial_images` is accepted and kept (partial_images=2
 * on dall-e-2 gives rc 0, req.partial_images == 2). check_profile_params() in src/api/validate.c
 * skips "stream" and "partial_images" with the comment "refused with a clearer message below", but
 * check_combinations() only refuses `stream`; nothing refuses partial_images. Every other
 * GPT-only parameter (output_format, output_compression, background, moderation) is
 * refused on DALL·E as an unknown parameter; expected the same here (param "partial_images";
 * the exact wording is the lead's call, e.g. "Unknown parameter: 'partial_images'."). */
static void partial_images_refused_on_dalle(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"prompt\":\"x\",\"model\":\"dall-e-2\",\"partial_images\":2}",
        "{\"prompt\":\"x\",\"model\":\"dall-e-3\",\"partial_images\":1}",
    };
    for (size_t i = 0; i < 2; i++) {
        struct isd_images_request req;
        struct isd_error err;
        int rc = isd_api_parse_generation(bodies[i], strlen(bodies[i]), &resolver, &req, &err);
        int partials = rc == 0 ? req.partial_images : -1;
        if (rc == 0)
            isd_images_request_release(&req);
        if (rc == 0)
            print_error("%s accepted with partial_images=%d\n", bodies[i], partials);
        assert_true(rc < 0);
        assert_string_equal(err.param, "partial_images");
    }
}

/* Regression test (fixed): whether `n: 2.0` is "a decimal number" depends on an unrelated field.
 * Alone,
 * {"n":2.0} is refused (invalid_type, "got a decimal number"); but when any integer in the
 * body is beyond int64, load_body() re-reads the whole body with JSON_DECODE_INT_AS_REAL and
 * get_int() (src/api/validate.c, `if (p->ints_as_reals && d == floor(d))`) can no longer tell
 * 2.0 from 2, so n=2.0 is accepted as 2 and validation goes on to the absurd
 * output_compression. Expected: the same invalid_type error for n as without the absurd
 * integer (the reals that were written as reals must stay reals). */
static void integral_real_stays_a_real_next_to_absurd_integers(void **state)
{
    (void)state;
    /* the body without the absurd integer: a decimal number */
    const char *alone = "{\"prompt\":\"x\",\"model\":\"gpt-image-1\",\"n\":2.0}";
    expect_error("n 2.0", alone, strlen(alone), ISD_E_INVALID_TYPE, "n",
                 TYPE("n", "an integer", "a decimal number"));
    const char *body = "{\"prompt\":\"x\",\"model\":\"gpt-image-1\",\"n\":2.0,"
                       "\"output_compression\":123456789012345678901234567890}";
    expect_error("n 2.0 with an absurd integer elsewhere", body, strlen(body), ISD_E_INVALID_TYPE,
                 "n", TYPE("n", "an integer", "a decimal number"));
}

/* Regression test (fixed): err.param is cut to ISD_ERR_PARAM_MAX - 1 bytes by snprintf in
 * isd_err_setv() (src/err/err.c) without regard to UTF-8, unlike the message (utf8_floor) and
 * quoted values (isd_err_quote). An unknown key of 100 'é' (200 bytes) gives a param of 127 bytes
 * ending with a lone 0xC3; the error body then carries "...é\ufffd" as param. Expected: the param
 * is valid UTF-8 (cut on a character boundary). */
static void param_cut_on_a_character_boundary(void **state)
{
    (void)state;
    char body[512];
    size_t n = (size_t)snprintf(body, sizeof body, "{\"prompt\":\"x\",\"");
    for (int i = 0; i < 100; i++) {
        body[n++] = '\xC3';
        body[n++] = '\xA9';
    }
    n += (size_t)snprintf(body + n, sizeof body - n, "\":1}");
    struct isd_images_request req;
    struct isd_error err;
    assert_int_equal(isd_api_parse_generation(body, n, &resolver, &req, &err),
                     -ISD_E_UNKNOWN_PARAM);
    assert_true(strlen(err.param) > 100);
    assert_true(isd_utf8_count(err.param, strlen(err.param), NULL));
}

/* Reusing a request after release gives the same result (no state leaks between parses). */
static void parse_twice_same_result(void **state)
{
    (void)state;
    const char *body = "{\"prompt\":\"hello\",\"model\":\"gpt-image-1\",\"user\":\"u\",\"n\":2}";
    struct isd_images_request a, b;
    struct isd_error err;
    assert_int_equal(isd_api_parse_generation(body, strlen(body), &resolver, &a, &err), 0);
    assert_int_equal(isd_api_parse_generation(body, strlen(body), &resolver, &b, &err), 0);
    assert_string_equal(a.prompt, b.prompt);
    assert_string_equal(a.user, b.user);
    assert_ptr_not_equal(a.prompt, b.prompt);
    assert_int_equal(a.n, b.n);
    isd_images_request_release(&a);
    isd_images_request_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_table),
        cmocka_unit_test(ok_table),
        cmocka_unit_test(prompt_length_limits),
        cmocka_unit_test(long_values_are_quoted_cut),
        cmocka_unit_test(body_is_not_nul_terminated),
        cmocka_unit_test(deep_nesting),
        cmocka_unit_test(partial_images_refused_on_dalle),
        cmocka_unit_test(integral_real_stays_a_real_next_to_absurd_integers),
        cmocka_unit_test(param_cut_on_a_character_boundary),
        cmocka_unit_test(parse_twice_same_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
