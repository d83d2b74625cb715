package order

// Statuses are all the statuses an order can be in, in lifecycle order.
var Statuses = []Status{StatusPlaced, StatusPaid, StatusPaymentFailed, StatusCancelled, StatusRefundRequested, StatusRefunded}
