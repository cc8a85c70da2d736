// SPDX-License-Identifier: GPL-2.0
/*
 * dm-log-cluster: the device-mapper dirty-log type "cluster", the historic
 * cluster-mirror table syntax
 *
 *   mirror cluster <#log args> <disk|core> <uuid> [device] <region size>
 *          [[no]sync] [block_on_error] <#legs> <dev> <offset>...
 *
 * served by the cluster log daemon (clogd).  The log owns its arguments and
 * a cache of "in sync" answers: every dirty-log method is forwarded to an
 * instance of the kernel's "userspace" log (dm-log-userspace) created with
 * the translated arguments "<uuid> clustered-disk <device> <region size>
 * [options]" (or "clustered-core"), so the daemon sees exactly what LVM-made
 * clustered mirrors send it; only IN_SYNC is answered here when the daemon
 * said "in sync" before, since the mirror's last suspend.  See README.md
 * beside this file for why.
 */

#include <linux/device-mapper.h>
#include <linux/dm-dirty-log.h>
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>

#define DM_MSG_PREFIX "cluster log"

#define CLUSTER_LOG_USAGE \
	"<disk|core> <uuid> [device] <region size> [[no]sync] [block_on_error]"

/* The delegate log type; its module is loaded on demand by dm-log. */
#define CLUSTER_LOG_DELEGATE "userspace"

/* Longest uuid the userspace log accepts (DM_UUID_LEN without the NUL). */
#define CLUSTER_LOG_UUID_MAX (DM_UUID_LEN - 1)

/*
 * At most: uuid, integrated_flush, type, device, region size, [no]sync,
 * block_on_error.
 */
#define CLUSTER_LOG_MAX_ARGS 7

/*
 * The in-sync cache of logs created from now on (README.md); 0 sends every
 * IN_SYNC to the daemon, as a `mirror userspace` table does.
 */
static bool in_sync_cache = true;
module_param(in_sync_cache, bool, 0644);
MODULE_PARM_DESC(in_sync_cache,
		 "keep the daemon's \"in sync\" answers until the next suspend (default: on)");

struct cluster_log_args {
	bool disk;
	const char *uuid;
	const char *device; /* disk form only */
	u32 region_size;
	const char *sync; /* "sync", "nosync" or NULL (default) */
	bool block_on_error;
};

struct cluster_log {
	struct dm_target *ti;
	/* The userspace log instance every method is forwarded to. */
	struct dm_dirty_log *delegate;
	/*
	 * Disk form: the log device, held by this log too so that a bad path
	 * is refused here with its name, before the daemon is asked.
	 */
	struct dm_dev *log_dev;
	/* Our own arguments, canonical order, for STATUSTYPE_TABLE. */
	unsigned int argc;
	char *table_args;
	/*
	 * The in-sync cache (README.md): a bit per region the daemon answered
	 * "in sync" to a blocking IN_SYNC.  Kept until the next postsuspend or
	 * resume, or a SET_REGION_SYNC of the region; the daemon keeps its own
	 * answers as they were until then (it hides a region that goes out of
	 * sync from a kernel until that kernel's postsuspend).  The generation
	 * drops an answer that was in flight when the cache was emptied.
	 */
	bool cache_on;
	region_t region_count;
	unsigned long *in_sync_bits;
	spinlock_t cache_lock;
	u64 cache_generation;
};

static bool is_number(const char *word)
{
	unsigned long long value;

	return kstrtoull(word, 10, &value) == 0;
}

/*
 * Parses the log arguments (what follows "cluster <#log args>").  Argument
 * numbers in messages count the log arguments from 1.  Every refusal names
 * the bad argument, because ti->error is overwritten by dm-raid1 with a
 * generic "Error creating mirror dirty log".
 */
static int parse_cluster_log_args(struct dm_target *ti, unsigned int argc,
				  char **argv, struct cluster_log_args *args)
{
	unsigned int min_argc, rs_index, i;
	int r;

	memset(args, 0, sizeof(*args));

	if (argc < 1) {
		DMERR("no log arguments given: expected " CLUSTER_LOG_USAGE);
		return -EINVAL;
	}

	if (!strcmp(argv[0], "disk")) {
		args->disk = true;
	} else if (!strcmp(argv[0], "core")) {
		args->disk = false;
	} else {
		DMERR("unknown log kind '%s' (log argument 1): expected disk or core",
		      argv[0]);
		return -EINVAL;
	}

	/* A disk log whose third word is a number has lost its device. */
	if (args->disk && argc >= 3 && is_number(argv[2])) {
		DMERR("disk log: missing log device (log argument 3 is '%s', a number)",
		      argv[2]);
		return -EINVAL;
	}

	min_argc = args->disk ? 4 : 3;
	if (argc < min_argc || argc > min_argc + 2) {
		DMERR("wrong number of log arguments for a %s log: %u given, expected %u to %u ("
		      CLUSTER_LOG_USAGE ")",
		      argv[0], argc, min_argc, min_argc + 2);
		return -EINVAL;
	}

	args->uuid = argv[1];
	if (strlen(args->uuid) > CLUSTER_LOG_UUID_MAX) {
		DMERR("uuid (log argument 2) is %zu characters long, at most %d allowed",
		      strlen(args->uuid), CLUSTER_LOG_UUID_MAX);
		return -EINVAL;
	}

	if (args->disk)
		args->device = argv[2];

	rs_index = args->disk ? 3 : 2;
	r = kstrtou32(argv[rs_index], 10, &args->region_size);
	if (r) {
		DMERR("region size '%s' (log argument %u) is not a number",
		      argv[rs_index], rs_index + 1);
		return -EINVAL;
	}
	if (!is_power_of_2(args->region_size)) {
		DMERR("region size %u (log argument %u) is not a power of two",
		      args->region_size, rs_index + 1);
		return -EINVAL;
	}
	if (args->region_size < 2 || args->region_size > ti->len) {
		DMERR("region size %u (log argument %u) out of range: 2 to %llu sectors (the mirror's length)",
		      args->region_size, rs_index + 1,
		      (unsigned long long)ti->len);
		return -EINVAL;
	}

	for (i = rs_index + 1; i < argc; i++) {
		const char *word = argv[i];

		if (!strcmp(word, "sync") || !strcmp(word, "nosync")) {
			if (args->sync) {
				DMERR("'%s' (log argument %u) conflicts with '%s' given before",
				      word, i + 1, args->sync);
				return -EINVAL;
			}
			args->sync = word;
		} else if (!strcmp(word, "block_on_error")) {
			if (args->block_on_error) {
				DMERR("'block_on_error' (log argument %u) given twice",
				      i + 1);
				return -EINVAL;
			}
			args->block_on_error = true;
		} else {
			DMERR("unknown option '%s' (log argument %u): expected sync, nosync or block_on_error",
			      word, i + 1);
			return -EINVAL;
		}
	}

	return 0;
}

/* "disk <uuid> <device> <region size> [sync|nosync] [block_on_error]" */
static char *format_table_args(const struct cluster_log_args *args)
{
	return kasprintf(GFP_KERNEL, "%s %s%s%s %u%s%s%s",
			 args->disk ? "disk" : "core", args->uuid,
			 args->disk ? " " : "", args->disk ? args->device : "",
			 args->region_size, args->sync ? " " : "",
			 args->sync ? args->sync : "",
			 args->block_on_error ? " block_on_error" : "");
}

/*
 * Creates the userspace log with "<uuid> integrated_flush clustered-disk|
 * clustered-core [device] <region size> [sync|nosync] [block_on_error]".  The
 * flush callback dm-raid1 gave us is handed on, so the delegate flushes the
 * mirror exactly as it would under a userspace table.  integrated_flush (which
 * the userspace log takes only right after the uuid, and does not pass on to
 * the daemon) sends a flush's marks inside its FLUSH request instead of a
 * MARK_REGION request before it, and defers a flush that only clears regions
 * by up to 3 s: fewer round trips to the daemon per write.
 */
static struct dm_dirty_log *create_delegate(struct dm_dirty_log *log,
					    struct dm_target *ti,
					    const struct cluster_log_args *args)
{
	char region_size[16];
	char *argv[CLUSTER_LOG_MAX_ARGS];
	unsigned int argc = 0;

	snprintf(region_size, sizeof(region_size), "%u", args->region_size);

	argv[argc++] = (char *)args->uuid;
	argv[argc++] = "integrated_flush";
	argv[argc++] = args->disk ? "clustered-disk" : "clustered-core";
	if (args->disk)
		argv[argc++] = (char *)args->device;
	argv[argc++] = region_size;
	if (args->sync)
		argv[argc++] = (char *)args->sync;
	if (args->block_on_error)
		argv[argc++] = "block_on_error";

	return dm_dirty_log_create(CLUSTER_LOG_DELEGATE, ti,
				   log->flush_callback_fn, argc, argv);
}

static void cluster_log_free(struct cluster_log *lc)
{
	kvfree(lc->in_sync_bits);
	if (lc->log_dev)
		dm_put_device(lc->ti, lc->log_dev);
	kfree(lc->table_args);
	kfree(lc);
}

static int cluster_ctr(struct dm_dirty_log *log, struct dm_target *ti,
		       unsigned int argc, char **argv)
{
	struct cluster_log_args args;
	struct cluster_log *lc;
	int r;

	r = parse_cluster_log_args(ti, argc, argv, &args);
	if (r)
		return r;

	if (args.block_on_error)
		DMWARN("%s: block_on_error holds failed writes only if the mirror table ends with '1 handle_errors' (a log cannot see the mirror's features)",
		       args.uuid);

	lc = kzalloc(sizeof(*lc), GFP_KERNEL);
	if (!lc) {
		DMERR("%s: cannot allocate the log context", args.uuid);
		return -ENOMEM;
	}
	lc->ti = ti;
	lc->argc = argc;
	spin_lock_init(&lc->cache_lock);
	lc->cache_on = READ_ONCE(in_sync_cache);
	lc->region_count = dm_sector_div_up(ti->len, args.region_size);
	lc->in_sync_bits = kvcalloc(BITS_TO_LONGS(lc->region_count),
				    sizeof(unsigned long), GFP_KERNEL);
	if (!lc->in_sync_bits) {
		DMERR("%s: cannot allocate the in-sync cache (%llu regions)",
		      args.uuid, (unsigned long long)lc->region_count);
		r = -ENOMEM;
		goto fail;
	}

	lc->table_args = format_table_args(&args);
	if (!lc->table_args) {
		DMERR("%s: cannot allocate the table arguments", args.uuid);
		r = -ENOMEM;
		goto fail;
	}

	if (args.disk) {
		r = dm_get_device(ti, args.device, dm_table_get_mode(ti->table),
				  &lc->log_dev);
		if (r) {
			DMERR("%s: log device '%s' (log argument 3) cannot be opened: error %d",
			      args.uuid, args.device, r);
			goto fail;
		}
	}

	lc->delegate = create_delegate(log, ti, &args);
	if (!lc->delegate) {
		DMERR("%s: the userspace log serving this log could not be created: is the log daemon (clogd) running? (see the messages above)",
		      args.uuid);
		r = -EINVAL;
		goto fail;
	}

	log->context = lc;
	return 0;

fail:
	cluster_log_free(lc);
	return r;
}

static void cluster_dtr(struct dm_dirty_log *log)
{
	struct cluster_log *lc = log->context;

	dm_dirty_log_destroy(lc->delegate);
	cluster_log_free(lc);
}

/*
 * The forwarders.  dm-raid1 treats a missing optional method as a no-op, so
 * a method the delegate lacks behaves here as dm-raid1 would treat it.
 */
static inline struct dm_dirty_log *delegate_of(struct dm_dirty_log *log)
{
	return ((struct cluster_log *)log->context)->delegate;
}

/* Empties the in-sync cache: the next IN_SYNC of every region asks the daemon. */
static void drop_in_sync_cache(struct cluster_log *lc)
{
	spin_lock(&lc->cache_lock);
	lc->cache_generation++;
	bitmap_zero(lc->in_sync_bits, lc->region_count);
	spin_unlock(&lc->cache_lock);
}

static int cluster_presuspend(struct dm_dirty_log *log)
{
	struct dm_dirty_log *d = delegate_of(log);

	return d->type->presuspend ? d->type->presuspend(d) : 0;
}

static int cluster_postsuspend(struct dm_dirty_log *log)
{
	struct dm_dirty_log *d = delegate_of(log);

	drop_in_sync_cache(log->context);
	return d->type->postsuspend ? d->type->postsuspend(d) : 0;
}

static int cluster_resume(struct dm_dirty_log *log)
{
	struct dm_dirty_log *d = delegate_of(log);

	drop_in_sync_cache(log->context);
	return d->type->resume ? d->type->resume(d) : 0;
}

static uint32_t cluster_get_region_size(struct dm_dirty_log *log)
{
	struct dm_dirty_log *d = delegate_of(log);

	return d->type->get_region_size(d);
}

static int cluster_is_clean(struct dm_dirty_log *log, region_t region)
{
	struct dm_dirty_log *d = delegate_of(log);

	return d->type->is_clean(d, region);
}

/*
 * dm-raid1 asks IN_SYNC, blocking, for each write to a region not in its
 * region hash, and again when it adds the region to the hash: two round
 * trips to the daemon per write to a region that had gone idle.  An "in
 * sync" answer is kept (see struct cluster_log); "not in sync" is not, since
 * a resync changes it.  A non-blocking call is forwarded as it comes (the
 * delegate refuses it and dm-raid1 retries blocking from its worker).
 */
static int cluster_in_sync(struct dm_dirty_log *log, region_t region,
			   int can_block)
{
	struct cluster_log *lc = log->context;
	struct dm_dirty_log *d = lc->delegate;
	u64 generation;
	int r;

	if (!lc->cache_on || !can_block || region >= lc->region_count)
		return d->type->in_sync(d, region, can_block);
	if (test_bit(region, lc->in_sync_bits))
		return 1;

	spin_lock(&lc->cache_lock);
	generation = lc->cache_generation;
	spin_unlock(&lc->cache_lock);

	r = d->type->in_sync(d, region, 1);
	if (r == 1) {
		spin_lock(&lc->cache_lock);
		if (lc->cache_generation == generation)
			set_bit(region, lc->in_sync_bits);
		spin_unlock(&lc->cache_lock);
	}
	return r;
}

static int cluster_flush(struct dm_dirty_log *log)
{
	struct dm_dirty_log *d = delegate_of(log);

	return d->type->flush(d);
}

static void cluster_mark_region(struct dm_dirty_log *log, region_t region)
{
	struct dm_dirty_log *d = delegate_of(log);

	d->type->mark_region(d, region);
}

static void cluster_clear_region(struct dm_dirty_log *log, region_t region)
{
	struct dm_dirty_log *d = delegate_of(log);

	d->type->clear_region(d, region);
}

static int cluster_get_resync_work(struct dm_dirty_log *log, region_t *region)
{
	struct dm_dirty_log *d = delegate_of(log);

	return d->type->get_resync_work(d, region);
}

static void cluster_set_region_sync(struct dm_dirty_log *log, region_t region,
				    int in_sync)
{
	struct cluster_log *lc = log->context;
	struct dm_dirty_log *d = lc->delegate;

	/* Either way the next IN_SYNC asks the daemon. */
	if (region < lc->region_count) {
		spin_lock(&lc->cache_lock);
		lc->cache_generation++;
		clear_bit(region, lc->in_sync_bits);
		spin_unlock(&lc->cache_lock);
	}

	d->type->set_region_sync(d, region, in_sync);
}

static region_t cluster_get_sync_count(struct dm_dirty_log *log)
{
	struct dm_dirty_log *d = delegate_of(log);

	return d->type->get_sync_count(d);
}

static int cluster_is_remote_recovering(struct dm_dirty_log *log,
					region_t region)
{
	struct dm_dirty_log *d = delegate_of(log);

	return d->type->is_remote_recovering ?
		       d->type->is_remote_recovering(d, region) : 0;
}

/*
 * STATUSTYPE_TABLE is our own arguments, so `dmsetup table` shows the seed
 * syntax that was loaded (canonical option order), ending with a space
 * because dm-raid1 appends the leg count.  STATUSTYPE_INFO is the daemon's
 * own report (e.g. "3 clustered-disk <device> A"); if the daemon cannot be
 * reached the delegate reports nothing and we say so in dm-log's shape.
 */
static int cluster_status(struct dm_dirty_log *log, status_type_t status_type,
			  char *result, unsigned int maxlen)
{
	struct cluster_log *lc = log->context;
	struct dm_dirty_log *d = lc->delegate;
	unsigned int sz = 0;
	int r;

	switch (status_type) {
	case STATUSTYPE_INFO:
		r = d->type->status(d, status_type, result, maxlen);
		if (r > 0)
			return r;
		DMEMIT("2 %s COM_FAILURE", log->type->name);
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %u %s ", log->type->name, lc->argc, lc->table_args);
		break;
	case STATUSTYPE_IMA:
		*result = '\0';
		break;
	}

	return sz;
}

static struct dm_dirty_log_type cluster_log_type = {
	.name = "cluster",
	.module = THIS_MODULE,
	.ctr = cluster_ctr,
	.dtr = cluster_dtr,
	.presuspend = cluster_presuspend,
	.postsuspend = cluster_postsuspend,
	.resume = cluster_resume,
	.get_region_size = cluster_get_region_size,
	.is_clean = cluster_is_clean,
	.in_sync = cluster_in_sync,
	.flush = cluster_flush,
	.mark_region = cluster_mark_region,
	.clear_region = cluster_clear_region,
	.get_resync_work = cluster_get_resync_work,
	.set_region_sync = cluster_set_region_sync,
	.get_sync_count = cluster_get_sync_count,
	.status = cluster_status,
	.is_remote_recovering = cluster_is_remote_recovering,
};

static int __init dm_log_cluster_init(void)
{
	int r;

	r = dm_dirty_log_type_register(&cluster_log_type);
	if (r) {
		DMERR("cannot register the dirty log type 'cluster': error %d",
		      r);
		return r;
	}

	DMINFO("dirty log type 'cluster' registered (served through '"
	       CLUSTER_LOG_DELEGATE "')");
	return 0;
}

static void __exit dm_log_cluster_exit(void)
{
	dm_dirty_log_type_unregister(&cluster_log_type);
}

module_init(dm_log_cluster_init);
module_exit(dm_log_cluster_exit);

/* dm-log loads it on first use too; the softdep makes `modprobe` load it first. */
MODULE_SOFTDEP("pre: dm-log-userspace");
MODULE_DESCRIPTION(DM_NAME " cluster dirty log (seed syntax) served by a userspace log daemon");
MODULE_LICENSE("GPL");
